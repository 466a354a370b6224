// Progress bars of the jobs in progress on a job admin page (exports/admin/progress.py):
// refreshed every second; when one of them has ended, the page reloads to show how.
(function () {
  "use strict";
  function activeBars() {
    return Array.prototype.filter.call(document.querySelectorAll(".job-progress[data-job]"),
      function (bar) { return bar.dataset.active === "1"; });
  }
  function show(bar, job) {
    var meter = bar.querySelector("progress"), words = bar.querySelector("small");
    meter.max = job.progress.bytes_total || 1;
    meter.value = job.progress.bytes_done || 0;
    bar.title = job.words;
    if (words) { words.textContent = job.words; }
  }
  function refresh() {
    var bars = activeBars();
    if (!bars.length) { return; }
    var query = bars.map(function (bar) { return "id=" + encodeURIComponent(bar.dataset.job); }).join("&");
    fetch(bars[0].dataset.url + "?" + query, {credentials: "same-origin", headers: {Accept: "application/json"}})
      .then(function (answer) { return answer.ok ? answer.json() : {}; })
      .then(function (jobs) {
        var ended = false;
        bars.forEach(function (bar) {
          var job = jobs[bar.dataset.job];
          if (!job) { return; }
          show(bar, job);
          if (!job.active) { ended = true; }
        });
        if (ended) { window.location.reload(); }
      })
      .catch(function () { /* the next tick tries again */ });
  }
  window.setInterval(refresh, 1000);
}());
