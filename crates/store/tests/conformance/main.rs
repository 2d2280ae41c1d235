//! The store conformance suite: what every `Store` backend must do, written once against
//! `Arc<dyn Store>` and run here on a fresh database per test.
//!
//! Every suite function runs on both backends: `sqlite::…` on a temp file, `postgres::…`
//! in a throwaway database on the server named by `DIALTONE_TEST_PG_URL` (required: the
//! PostgreSQL tests fail, not skip, without it). `postgres_only` adds what only a shared
//! server can show: several nodes claiming side by side.

mod parity;
mod pg;
mod postgres_only;
mod renumbering;
mod schema;
mod secrets;
mod support;
mod upgrade;

mod agents;
mod attempts;
mod callers;
mod claim;
mod contacts;
mod dnc;
mod event_edges;
mod events;
mod guards;
mod idempotency;
mod inbound;
mod leases;
mod lifecycle;
mod outbox;
mod placing;
mod planner;
mod reads;
mod schedule;
mod stats;
mod steer;
mod zones;

use dialtone_store::Store;
use std::any::Any;
use std::sync::Arc;

/// A fresh, migrated, empty SQLite store, and a guard that keeps its file alive for the test.
async fn fresh_sqlite() -> (Arc<dyn Store>, Box<dyn Any + Send>) {
    let dir = tempfile::tempdir().expect("create a temp dir");
    let url = format!("sqlite://{}/t.db", dir.path().display());
    let store = dialtone_store::connect(&url).await.expect("open and migrate a fresh SQLite store");
    (store, Box::new(dir))
}

/// A fresh, migrated, empty PostgreSQL store in a database of its own on the server named
/// by `DIALTONE_TEST_PG_URL` (unset: the test fails), dropped when the guard goes.
async fn fresh_postgres() -> (Arc<dyn Store>, Box<dyn Any + Send>) {
    let db = pg::fresh_database().await;
    let store = dialtone_store::connect(&db.url).await.expect("open and migrate a fresh PostgreSQL store");
    (store, Box::new(db))
}

/// Each suite function becomes two `#[tokio::test]`s, `sqlite::name` and `postgres::name`,
/// each on its own fresh store. Multi-threaded so that the concurrency tests really do run
/// claims in parallel.
macro_rules! conformance {
    ($($module:ident :: $name:ident),+ $(,)?) => {
        conformance!(@backend sqlite, fresh_sqlite, $($module::$name),+);
        conformance!(@backend postgres, fresh_postgres, $($module::$name),+);
    };
    (@backend $backend:ident, $fresh:ident, $($module:ident :: $name:ident),+) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let (store, _guard) = crate::$fresh().await;
                    crate::$module::$name(store).await;
                }
            )+
        }
    };
}

conformance! {
    outbox::a_campaign_run_writes_each_subscribed_event_once_to_each_matching_endpoint,
    outbox::a_batch_writes_campaign_started_when_it_is_made,
    outbox::a_resume_sends_campaign_resumed_never_a_second_campaign_started,
    outbox::deliveries_are_leased_retried_on_the_schedule_and_replayed,
    outbox::an_endpoint_failing_for_five_days_is_disabled_and_rotation_keeps_two_secrets_a_day,
    outbox::an_event_is_one_message_until_a_claim_fans_it_out_to_the_endpoints_receiving_it_then,
    outbox::a_call_ended_waits_for_the_providers_report_and_carries_its_figures,
    outbox::an_adopted_orphan_report_releases_its_call_ended_at_once,
    outbox::an_answer_whose_in_progress_came_late_or_never_is_on_record_and_sends_call_started,
    steer::contacts_are_filtered_by_status_and_searched_by_digits_or_name,
    steer::pending_contacts_are_grouped_by_hold_due_time_and_retry,
    steer::a_patch_holds_from_the_next_claim_and_archive_waits_for_live_calls,
    steer::export_pages_walk_every_contact_once_with_its_last_call_and_every_key,
    contacts::an_extension_is_kept_and_one_number_may_hold_several,
    contacts::adding_contacts_to_an_unknown_campaign_names_the_campaign_and_where_it_was_missed,
    claim::claim_never_exceeds_max_concurrent_and_tops_up_to_the_cap_in_continuous_mode,
    claim::batch_mode_claims_only_when_no_call_is_active,
    claim::claim_returns_nothing_for_draft_paused_or_canceled_campaigns,
    claim::contacts_due_in_the_future_are_not_claimed,
    claim::concurrent_claims_from_many_tasks_never_exceed_the_cap,
    claim::claim_many_claims_for_each_campaign_up_to_its_own_cap,
    claim::campaigns_claimed_together_share_their_account_limit_fairly,
    claim::a_claim_commits_the_placing_fence_only_for_the_campaigns_asked,
    dnc::a_number_suppressed_while_the_campaign_runs_is_never_claimed_and_ends_as_dnc,
    dnc::numbers_turned_away_are_replaced_in_the_same_claim,
    dnc::a_campaign_list_does_not_reach_other_campaigns,
    dnc::suppressions_are_added_once_checked_listed_and_removed,
    schedule::over_a_week_nobody_is_dialled_outside_campaign_windows_or_their_own_hours,
    schedule::a_daily_campaign_calls_each_contact_once_per_local_day,
    zones::over_a_week_no_multi_zone_number_is_dialled_outside_the_hours_of_any_of_its_zones,
    zones::contacts_whose_zones_never_share_a_calling_hour_wait_and_say_why,
    zones::a_campaign_may_opt_into_its_own_zone_for_ambiguous_numbers,
    zones::contacts_stored_with_one_zone_keep_reading_as_one_zone,

    guards::overdue_calls_are_live_calls_past_their_campaigns_or_the_default_maximum,
    guards::a_scheduled_single_call_whose_number_is_listed_by_its_time_ends_canceled_dnc,
    guards::a_canceled_campaigns_scheduled_call_is_canceled_and_never_dialled,

    placing::mark_placing_is_a_fence,
    attempts::attempt_numbers_never_repeat_or_skip_and_only_spent_attempts_count,
    attempts::a_recurring_single_calls_next_occurrence_is_numbered_after_a_capacity_refused_call,
    placing::mark_dialed_moves_queued_to_dialing_and_starts_the_campaign_only_once,
    placing::a_webhook_that_arrived_before_mark_dialed_is_not_moved_back,

    events::a_call_refused_because_the_account_is_full_spends_no_attempt,
    events::a_duplicate_event_is_stored_once_and_reported_duplicate,
    events::a_whole_group_commit_is_applied_as_if_its_events_came_one_by_one,
    events::each_events_payload_is_stored_as_it_came_whatever_else_is_in_its_batch,
    events::an_event_stored_before_changes_nothing_in_a_later_batch_even_if_it_would_have_moved_the_call,
    events::out_of_order_events_never_move_a_call_back,
    events::an_event_is_matched_by_call_id_before_the_provider_id_is_stored_and_adopts_it,
    events::an_event_for_an_unknown_call_is_stored_without_a_call,
    events::no_answer_schedules_a_retry_after_the_base_delay_and_counts_the_attempt,
    events::a_contact_is_exhausted_after_max_attempts,
    events::a_completed_call_finishes_its_contact_as_done,
    events::an_end_in_a_canceled_campaign_cancels_the_contact_instead_of_retrying,
    events::end_call_on_a_queued_call_with_failed_is_failed_and_schedules_a_retry,

    event_edges::a_machine_verdict_before_completed_ends_the_call_as_voicemail,
    event_edges::a_machine_verdict_after_completed_corrects_the_outcome_to_voicemail,
    event_edges::a_human_verdict_leaves_completed_and_order_in_one_batch_does_not_matter,
    event_edges::an_event_that_beat_the_provider_id_is_applied_when_the_id_is_stored,
    event_edges::an_event_whose_ids_name_different_calls_moves_neither,
    event_edges::events_for_calls_never_placed_are_purged_after_the_retention,
    event_edges::dialed_marks_written_together_adopt_their_own_orphans_and_start_the_campaign_once,
    event_edges::a_batch_saves_the_reports_of_the_events_that_matched_their_call,

    leases::a_live_owners_unsent_calls_are_never_another_nodes_orphans,
    leases::a_nodes_calls_in_flight_are_skipped,
    leases::a_dead_owners_unsent_call_is_taken_over_exactly_once_by_racing_nodes,
    leases::after_a_takeover_the_old_owners_mark_placing_fails,
    leases::other_live_nodes_counts_the_other_nodes_within_their_lease,
    leases::a_call_with_a_provider_id_is_never_an_orphan,
    leases::a_call_whose_owner_never_heartbeat_is_an_orphan_at_once,

    lifecycle::a_contact_can_be_retried_now_past_its_limits_and_its_pending_retries_canceled,
    lifecycle::release_unsent_deletes_the_call_and_gives_back_the_attempt,
    lifecycle::release_unsent_refuses_a_call_with_a_provider_id,
    lifecycle::release_unsent_refuses_a_call_the_provider_already_reported_on,
    lifecycle::complete_if_done_waits_for_every_contact_and_call_to_finish,
    lifecycle::complete_if_done_leaves_a_canceled_campaign_canceled,
    lifecycle::cancel_campaign_cancels_pending_contacts_and_lets_active_calls_end,

    contacts::duplicate_numbers_are_reported_with_their_line,
    contacts::contacts_cannot_be_added_to_a_completed_or_canceled_campaign,
    contacts::a_hundred_thousand_contacts_insert_completely_in_chunks_of_a_thousand,

    reads::list_calls_filters_by_campaign_status_outcome_and_phone,
    reads::keyset_pagination_returns_each_call_exactly_once,
    reads::another_workspace_sees_none_of_our_campaigns_contacts_or_calls,
    reads::campaign_counts_reflect_contacts_calls_outcomes_and_active_calls,
    reads::counts_of_several_campaigns_read_together_match_each_campaigns_own,
    reads::find_api_key_finds_a_created_key_by_its_hash_only,
    reads::a_call_report_is_stored_and_calls_filter_by_several_statuses_dates_and_sort,
    reads::api_keys_are_listed_without_their_hash_touched_and_revoked,
    reads::workspaces_are_created_renamed_disabled_and_their_keys_follow,

    inbound::phone_numbers_are_added_listed_found_by_exact_number_and_removed,
    inbound::a_number_registered_already_in_any_workspace_is_a_conflict,
    inbound::an_inbound_call_is_recorded_ringing_counts_as_active_and_is_idempotent_on_the_provider_id,
    inbound::the_hidden_inbound_campaign_is_never_listed_dialled_from_or_completed,
    inbound::an_ended_inbound_call_finishes_its_contact_as_done_whatever_the_outcome,
    inbound::events_that_arrived_before_the_record_are_adopted_and_applied_in_order,
    inbound::an_orphan_that_does_not_end_the_call_is_applied_and_later_events_find_the_call,
    inbound::two_concurrent_inbound_calls_from_the_same_caller_are_both_recorded,
    inbound::two_hundred_inbound_calls_racing_their_own_events_are_each_recorded_and_ended_exactly_once,

    agents::agents_are_created_listed_paged_updated_and_soft_deleted,
    idempotency::an_idempotency_key_has_one_owner_its_answer_is_kept_a_day_and_a_failed_owner_frees_it,
    idempotency::concurrent_requests_with_one_key_have_exactly_one_owner,
    agents::an_agent_campaigns_calls_carry_the_agent_and_keep_their_transcript,
    agents::a_single_call_with_an_agent_is_claimed_with_it,
    planner::a_table_grown_by_a_burst_is_analysed_once,
    stats::stats_match_a_hand_computed_fixture,
    stats::the_stats_rollup_answers_exactly_what_the_raw_query_answers,
    callers::each_strategy_picks_as_its_rule_says_and_the_call_records_the_number,
    callers::a_contact_keeps_its_caller_number_across_retries,
    callers::the_daily_limit_holds_under_concurrent_claims_across_campaigns,
    callers::calls_per_minute_caps_the_calls_placed_in_any_rolling_minute,
}
