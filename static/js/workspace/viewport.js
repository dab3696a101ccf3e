// The slide under the editor: OpenSeadragon, the SVG overlay, screen <-> image pixel conversions.
(function (HC) {
  "use strict";

  HC.workspace = HC.workspace || {};

  // Adds viewer, overlay, zoomToRegion, toImage, screenDistance and elementPosition to ws.
  HC.workspace.viewport = function (ws) {
    var region = ws.region;

    var viewer = OpenSeadragon({
      id: "ws-viewer",
      prefixUrl: "/static/vendor/openseadragon/images/",
      tileSources: ws.config.dziUrl,
      showNavigator: true,
      navigatorPosition: "BOTTOM_RIGHT",
      navigatorAutoFade: false,
      showNavigationControl: false,
      // Up to 2 screen pixels per image pixel: a little beyond native for careful outlining.
      maxZoomPixelRatio: 2,
      visibilityRatio: 0.2,
      keyboardNavEnabled: false, // its keys (r rotates, f flips) clash with the tools' keys
      gestureSettingsMouse: { clickToZoom: false, dblClickToZoom: false, flickEnabled: false },
      crossOriginPolicy: false,
      timeout: 60000,
    });
    window.histocrowdViewer = viewer;

    var overlay = new HC.Overlay(viewer, {
      region: region,
      slide: ws.config.slide,
      colorOf: function (classId) {
        return ws.classById[classId] ? ws.classById[classId].color : "#ffffff";
      },
      // Late-bound: vertex editing is installed after the viewport.
      onHandleDown: function (handle, event) { ws.onHandleDown(handle, event); },
    });

    function zoomToRegion(immediately) {
      var item = viewer.world.getItemAt(0);
      if (!item) {
        return;
      }
      var mx = region.width * 0.25, my = region.height * 0.25;
      viewer.viewport.fitBounds(item.imageToViewportRectangle(
        region.x - mx, region.y - my, region.width + 2 * mx, region.height + 2 * my), immediately);
    }

    viewer.addHandler("open", function () {
      zoomToRegion(true);
      document.body.dataset.viewerOpen = "yes";
      var item = viewer.world.getItemAt(0);
      item.addHandler("fully-loaded-change", function (e) {
        document.body.dataset.tilesLoaded = e.fullyLoaded ? "yes" : "no";
      });
    });

    // Element pixels -> level-0 image pixels, to 0.1 px.
    function toImage(position) {
      var p = viewer.viewport.viewerElementToImageCoordinates(
        new OpenSeadragon.Point(position.x, position.y));
      return [HC.geometry.round1(p.x), HC.geometry.round1(p.y)];
    }

    function screenDistance(a, b) {
      var sa = overlay.toScreen(a), sb = overlay.toScreen(b);
      return Math.hypot(sa[0] - sb[0], sa[1] - sb[1]);
    }

    function elementPosition(event) {
      var box = viewer.element.getBoundingClientRect();
      return { x: event.clientX - box.left, y: event.clientY - box.top };
    }

    ws.viewer = viewer;
    ws.overlay = overlay;
    ws.zoomToRegion = zoomToRegion;
    ws.toImage = toImage;
    ws.screenDistance = screenDistance;
    ws.elementPosition = elementPosition;
  };
})(window.HC = window.HC || {});
