/**
 * graphile-worker crontab. Every line is a safety net or a schedule; `?fill=` lets a restarted worker make up a
 * missed run once (not once per missed minute).
 */
export const crontab = [
  // The drain is normally woken by the intake; this bounds a lost kick to one minute.
  '* * * * * drain ?fill=1m&jobKey=drain&jobKeyMode=preserve_run_at',
].join('\n');
