/**
 * graphile-worker crontab. Every line is a safety net or a schedule; `?fill=` lets a restarted worker make up a
 * missed run once (not once per missed minute).
 */
export const crontab = [
  // The drain is normally woken by the intake; this bounds a lost kick to one minute.
  '* * * * * drain ?fill=1m&jobKey=drain&jobKeyMode=preserve_run_at',
  // A killed worker's jobs wait at most STALE_LOCK_AFTER_MS + 2 minutes, not graphile-worker's 4 hours.
  '*/2 * * * * clear_stale_locks ?jobKey=clear_stale_locks',
  // Retention in bounded batches; hourly so each run is short.
  '17 * * * * prune_inbox ?fill=2h&jobKey=prune_inbox',
  // Enqueues each source's due poll streams (POLL_INTERVAL_MS per stream); the polls themselves run as poll_stream.
  '* * * * * poll_schedule ?fill=1m&jobKey=poll_schedule&jobKeyMode=preserve_run_at',
  // Resources to fetch by id are normally queued by the drain; this covers a lost or failed resolve job.
  '* * * * * resolve_schedule ?fill=1m&jobKey=resolve_schedule&jobKeyMode=preserve_run_at',
  // Each source's webhook subscription at the provider: missing, disabled (after repeated failures), topics missing.
  '*/15 * * * * check_subscriptions ?jobKey=check_subscriptions',
  // The ops page's time series: one sample per minute (a missed minute is folded into the next window).
  '* * * * * sample_ops_metrics ?jobKey=sample_ops_metrics&jobKeyMode=preserve_run_at',
  // Reconciliation against the provider's counts (RECONCILE_DAYS closed days per source; one call per complete window).
  '41 * * * * reconcile_windows ?fill=2h&jobKey=reconcile_windows',
].join('\n');
