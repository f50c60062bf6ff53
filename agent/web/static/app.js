// Results as you type: the server renders the same escaped fragment the page shows.
"use strict";
(function () {
  const box = document.querySelector("input[data-live]");
  const results = document.getElementById("results");
  if (!box || !results) return;
  let timer = 0;
  let latest = 0;
  box.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(async function () {
      const asked = ++latest;
      const url = box.dataset.live + "?q=" + encodeURIComponent(box.value);
      const response = await fetch(url, { credentials: "same-origin" });
      if (!response.ok || asked !== latest) return;
      results.innerHTML = await response.text();
      history.replaceState(null, "", "/search?q=" + encodeURIComponent(box.value));
    }, 150);
  });
})();
