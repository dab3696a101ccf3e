// Experts draw a gold-standard region: drag a rectangle, then outline it in the workspace.
(function () {
  "use strict";
  var viewer = window.histocrowdViewer;
  var config = JSON.parse(document.getElementById("viewer-config").textContent);
  var button = document.getElementById("gold-draw");
  var status = document.getElementById("gold-status");
  var box = null, start = null, drawing = false;

  function csrf() {
    var m = document.cookie.match(/(?:^|; )csrftoken=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  }

  function imagePoint(event) {
    var p = viewer.viewport.viewerElementToImageCoordinates(event.position);
    return { x: Math.max(0, Math.min(config.slideSize[0], p.x)),
             y: Math.max(0, Math.min(config.slideSize[1], p.y)) };
  }

  function rect(a, b) {
    return { x: Math.round(Math.min(a.x, b.x)), y: Math.round(Math.min(a.y, b.y)),
             width: Math.round(Math.abs(a.x - b.x)), height: Math.round(Math.abs(a.y - b.y)) };
  }

  function show(r) {
    if (!box) {
      box = document.createElement("div");
      box.className = "gold-box";
      viewer.addOverlay(box, new OpenSeadragon.Rect(0, 0, 0, 0));
    }
    viewer.updateOverlay(box, viewer.viewport.imageToViewportRectangle(r.x, r.y, r.width, r.height));
  }

  button.addEventListener("click", function () {
    drawing = !drawing;
    button.classList.toggle("active", drawing);
    viewer.setMouseNavEnabled(!drawing);
    status.textContent = drawing ? "Drag a rectangle on the slide" : "";
  });

  new OpenSeadragon.MouseTracker({
    element: viewer.canvas,
    pressHandler: function (e) { if (drawing) { start = imagePoint(e); } },
    dragHandler: function (e) { if (drawing && start) { show(rect(start, imagePoint(e))); } },
    releaseHandler: function (e) {
      if (!drawing || !start) { return; }
      var r = rect(start, imagePoint(e));
      start = null;
      if (r.width < 16 || r.height < 16) { status.textContent = "Too small: drag a larger rectangle"; return; }
      status.textContent = "Creating…";
      fetch("/api/regions/", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf() },
        body: JSON.stringify({ project: +document.getElementById("gold-project").value,
                               slide: config.slideId, x: r.x, y: r.y, width: r.width,
                               height: r.height, origin: "gold" })
      }).then(function (resp) {
        return resp.json().then(function (body) { return { ok: resp.ok, body: body }; });
      }).then(function (res) {
        if (!res.ok) { status.textContent = res.body.detail || JSON.stringify(res.body); return; }
        status.textContent = "Gold region " + res.body.id + " created";
        if (res.body.assignment) { window.location.href = "/work/" + res.body.assignment + "/"; }
      });
    }
  }).setTracking(true);
})();
