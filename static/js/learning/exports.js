// The research export page (templates/learning/exports/exports.html): poll the API for exports
// still building; reload once one finishes.
(function () {
  const rows = Array.from(document.querySelectorAll('[data-testid=export-row]')).filter(
    (r) => r.dataset.status === 'queued' || r.dataset.status === 'building');
  if (!rows.length) return;
  const tick = async () => {
    let finished = false;
    for (const row of rows) {
      const res = await fetch(`/api/exports/${row.dataset.export}/`, {credentials: 'same-origin'});
      if (!res.ok) continue;
      const data = await res.json();
      const bar = row.querySelector('.js-bar'), text = row.querySelector('.js-text');
      if (bar) bar.style.width = `${Math.round(100 * data.progress)}%`;
      if (text) text.textContent = data.progress_text;
      if (data.status === 'ready' || data.status === 'failed') finished = true;
    }
    if (finished) window.location.reload(); else setTimeout(tick, 2000);
  };
  setTimeout(tick, 2000);
})();
