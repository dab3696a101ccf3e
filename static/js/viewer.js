// The slide viewer: OpenSeadragon on the slide's Deep Zoom tiles.
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("viewer-config").textContent);
  var viewer = OpenSeadragon({
    id: "viewer",
    prefixUrl: "/static/vendor/openseadragon/images/",
    tileSources: config.dziUrl,
    showNavigator: true,
    navigatorPosition: "BOTTOM_RIGHT",
    navigatorAutoFade: false,
    // 1 screen pixel per image pixel at full zoom: the slide's native magnification.
    maxZoomPixelRatio: 1,
    visibilityRatio: 0.5,
    crossOriginPolicy: false,
    loadTilesWithAjax: false,
    timeout: 60000,
  });
  window.histocrowdViewer = viewer;
  if (config.mpp) {
    window.histocrowdScaleBar(viewer, config.mpp);
  }
  var readout = document.getElementById("zoom-readout");
  viewer.addHandler("animation", function () {
    var z = viewer.viewport.viewportToImageZoom(viewer.viewport.getZoom(true));
    readout.textContent = (z * 100).toFixed(z < 0.1 ? 1 : 0) + "% of native";
  });
  viewer.addHandler("fully-loaded-change", function (event) {
    document.body.dataset.tilesLoaded = event.fullyLoaded ? "yes" : "no";
  });
  viewer.world.addHandler("add-item", function (event) {
    event.item.addHandler("fully-loaded-change", function (e) {
      document.body.dataset.tilesLoaded = e.fullyLoaded ? "yes" : "no";
    });
  });
})();
