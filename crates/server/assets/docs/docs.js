// dialtone's docs page: Swagger UI on this server's own document. Nothing is loaded from
// elsewhere (validatorUrl off: no badge fetched from the validator service).
window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "/api/v1/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    persistAuthorization: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
};
