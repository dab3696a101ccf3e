// Starts ReDoc on the API docs page (templates/drf_spectacular/redoc.html). The nonce lets
// ReDoc's injected <style> elements pass the page's Content-Security-Policy.
"use strict";
(function () {
  const container = document.getElementById("redoc-container");
  const settings = container.dataset.settings ? JSON.parse(container.dataset.settings) : {};
  Redoc.init(
    container.dataset.specUrl,
    { ...settings, nonce: container.dataset.nonce },
    container,
  );
})();
