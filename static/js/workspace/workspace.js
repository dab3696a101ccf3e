// The annotator workspace: wires OpenSeadragon, the polygon editor, the overlay, the class
// picker, autosave and the finishing buttons together.
(function (HC) {
  "use strict";

  var config = JSON.parse(document.getElementById("workspace-config").textContent);
  var region = config.region;
  var $ = function (id) { return document.getElementById(id); };

  var CLOSE_PX = 9;      // a click this near the first point closes the ring
  var FREEHAND_PX = 3;   // freehand keeps a point every this many screen pixels
  var SAVE_DELAY_MS = 1000;
  var RETRY_MS = 5000;
  var IDLE_S = 120;      // no input for this long: the clock stops

  var classes = config.classes;
  var classById = {};
  classes.forEach(function (c) { classById[c.id] = c; });
  var drawable = classes.filter(function (c) { return !c.is_background; });

  var state = {
    tool: "move",
    classId: drawable.length ? drawable[0].id : null,
    selected: null,          // shape uid
    selectedVertex: null,    // {polygon, ring, index}
    drawing: null,           // {points, classId, hole, cursor, freehand}
    popped: [],              // vertices removed by undo while drawing (for redo)
    opacityMode: 0,
    readOnly: true,          // until the draft has loaded
    etag: null,
    regionLabel: null,
    pending: false,          // local changes the server does not have yet
    saveError: "",
    inflight: null,
    saveTimer: null,
    baseSeconds: 0,
    activeSeconds: 0,
    lastInput: Date.now(),
  };

  var editor = new HC.Editor();

  // --- the viewer ------------------------------------------------------------------------
  var viewer = OpenSeadragon({
    id: "ws-viewer",
    prefixUrl: "/static/vendor/openseadragon/images/",
    tileSources: config.dziUrl,
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
    slide: config.slide,
    colorOf: function (classId) { return classById[classId] ? classById[classId].color : "#ffffff"; },
    onHandleDown: onHandleDown,
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

  // --- drawing ---------------------------------------------------------------------------
  function drawingTool() {
    return state.tool === "polygon" || state.tool === "freehand" || state.tool === "hole";
  }

  function startDrawing() {
    state.drawing = { points: [], classId: state.classId, hole: state.tool === "hole",
                      cursor: null, freehand: false };
    state.popped = [];
  }

  function addPoint(point, minPx) {
    var pts = state.drawing.points;
    if (pts.length && screenDistance(pts[pts.length - 1], point) < minPx) {
      return false; // a double-click's second click, or a jittery freehand sample
    }
    pts.push(point);
    state.popped = [];
    return true;
  }

  function cancelDrawing() {
    state.drawing = null;
    overlay.setDrawing(null);
    refreshControls();
  }

  function closeDrawing() {
    var drawing = state.drawing;
    if (!drawing) {
      return;
    }
    state.drawing = null;
    overlay.setDrawing(null);
    if (drawing.points.length < 3) {
      notice("A shape needs at least three points.", "warn");
      refreshControls();
      return;
    }
    if (drawing.hole) {
      var result = editor.addHole(drawing.points, state.selected);
      if (!result.ok) {
        notice(result.reason, "warn");
      } else {
        select(result.uid);
        notice("Hole cut.", "ok");
      }
    } else {
      var uid = editor.addShape(drawing.classId, drawing.points);
      if (uid) {
        select(uid);
      } else {
        notice("That outline has no area; try again.", "warn");
      }
    }
    refreshControls();
  }

  function showDrawing() {
    overlay.setDrawing(state.drawing);
    refreshControls();
  }

  viewer.addHandler("canvas-press", function (event) {
    if (state.readOnly || !drawingTool()) {
      return;
    }
    var freehand = state.tool === "freehand" || event.originalEvent.shiftKey;
    if (!freehand) {
      return;
    }
    if (!state.drawing) {
      if (!canDraw()) {
        return;
      }
      startDrawing();
    }
    state.drawing.freehand = true;
    addPoint(toImage(event.position), 0);
    showDrawing();
  });

  viewer.addHandler("canvas-drag", function (event) {
    if (state.drawing && state.drawing.freehand) {
      event.preventDefaultAction = true;
      if (addPoint(toImage(event.position), FREEHAND_PX)) {
        state.drawing.cursor = null;
        showDrawing();
      }
    }
  });

  viewer.addHandler("canvas-drag-end", function (event) {
    if (state.drawing && state.drawing.freehand) {
      event.preventDefaultAction = true;
    }
  });

  viewer.addHandler("canvas-release", function () {
    if (!state.drawing || !state.drawing.freehand) {
      return;
    }
    state.drawing.freehand = false;
    state.drawing.tracedAt = Date.now();
    if (state.tool === "freehand") {
      closeDrawing(); // a freehand outline closes when the button is let go
    }
  });

  viewer.addHandler("canvas-click", function (event) {
    event.preventDefaultAction = true;
    if (state.drawing && Date.now() - (state.drawing.tracedAt || 0) < 100) {
      return; // the release that ends a Shift-drag is not a vertex
    }
    if (!event.quick || state.readOnly) {
      return;
    }
    var point = toImage(event.position);
    if (state.tool === "move") {
      var shape = editor.shapeAt(point);
      select(shape ? shape.uid : null);
      return;
    }
    if (state.tool !== "polygon" && state.tool !== "hole") {
      return;
    }
    if (!state.drawing) {
      if (!canDraw()) {
        return;
      }
      startDrawing();
    }
    var pts = state.drawing.points;
    if (pts.length >= 3 && screenDistance(pts[0], point) <= CLOSE_PX) {
      closeDrawing();
      return;
    }
    addPoint(point, 2);
    showDrawing();
  });

  viewer.addHandler("canvas-double-click", function (event) {
    event.preventDefaultAction = true;
    if (state.drawing && state.drawing.points.length >= 3) {
      closeDrawing();
    }
  });

  viewer.canvas.addEventListener("pointermove", function (event) {
    if (state.drawing && !state.drawing.freehand && state.drawing.points.length) {
      state.drawing.cursor = toImage(elementPosition(event));
      overlay.setDrawing(state.drawing);
    }
  });

  function canDraw() {
    if (state.classId === null) {
      notice("This project has no class to draw.", "warn");
      return false;
    }
    return true;
  }

  // Handles: close the ring, or select / drag / Alt-delete a vertex of the selected shape.
  function onHandleDown(handle, event) {
    touch();
    if (handle.kind === "close") {
      closeDrawing();
      return;
    }
    if (state.readOnly) {
      return;
    }
    if (event.altKey) {
      var result = editor.deleteVertex(handle.uid, handle.at);
      if (!result.ok) {
        notice(result.reason, "warn");
      }
      state.selectedVertex = null;
      overlay.setSelection(state.selected, null);
      return;
    }
    state.selectedVertex = handle.at;
    overlay.setSelection(state.selected, handle.at);
    editor.beginTransient();
    var move = function (e) {
      editor.moveVertex(handle.uid, handle.at, toImage(elementPosition(e)));
    };
    // Capture phase: the handle under the pointer is redrawn as it moves and stops the
    // bubbling of its own pointerup (so that OpenSeadragon never sees half a gesture).
    var up = function () {
      window.removeEventListener("pointermove", move, true);
      window.removeEventListener("pointerup", up, true);
      editor.endTransient();
    };
    window.addEventListener("pointermove", move, true);
    window.addEventListener("pointerup", up, true);
  }

  // --- selection and tools ---------------------------------------------------------------
  function select(uid, vertex) {
    state.selected = uid;
    state.selectedVertex = vertex || null;
    overlay.setSelection(uid, state.selectedVertex);
    renderShapeList();
    refreshControls();
  }

  function setTool(tool) {
    if (state.readOnly && tool !== "move") {
      return;
    }
    if (state.drawing && tool !== state.tool) {
      cancelDrawing();
    }
    state.tool = tool;
    document.querySelectorAll("[data-tool]").forEach(function (button) {
      button.setAttribute("aria-pressed", button.dataset.tool === tool ? "true" : "false");
    });
    $("ws-viewer").dataset.tool = tool;
    overlay.setShowHandles(tool === "move" && !state.readOnly);
    var hint = $("ws-hint").dataset;
    $("ws-hint").textContent = (state.readOnly ? hint.readonly : hint[tool]) || "";
  }

  function setClass(classId) {
    state.classId = classId;
    document.querySelectorAll("[data-class-id]").forEach(function (button) {
      button.setAttribute("aria-pressed", Number(button.dataset.classId) === classId ? "true" : "false");
    });
    if (state.drawing && !state.drawing.hole) {
      state.drawing.classId = classId;
      overlay.setDrawing(state.drawing);
    }
    // In Move mode the class applies to the selected shape; while drawing it only picks the
    // class of the next outline (the shape just closed stays as it was drawn).
    if (state.tool === "move" && state.selected !== null && !state.readOnly) {
      editor.setClass(state.selected, classId);
    }
  }

  function deleteSelection() {
    if (state.readOnly || state.selected === null) {
      return;
    }
    if (state.selectedVertex) {
      var result = editor.deleteVertex(state.selected, state.selectedVertex);
      if (!result.ok) {
        notice(result.reason, "warn");
      }
      select(state.selected, null);
      return;
    }
    editor.deleteShape(state.selected);
    select(null);
  }

  function undo() {
    if (state.drawing) {
      var pts = state.drawing.points;
      if (pts.length) {
        state.popped.push(pts.pop());
      }
      if (!pts.length) {
        cancelDrawing();
      } else {
        showDrawing();
      }
      return;
    }
    editor.undo();
  }

  function redo() {
    if (state.drawing) {
      if (state.popped.length) {
        state.drawing.points.push(state.popped.pop());
        showDrawing();
      }
      return;
    }
    editor.redo();
  }

  var OPACITY_LABELS = ["Fill", "Outline", "Hidden"];
  function cycleOpacity() {
    state.opacityMode = (state.opacityMode + 1) % 3;
    overlay.setOpacityMode(state.opacityMode);
    $("ws-opacity-label").textContent = OPACITY_LABELS[state.opacityMode];
    $("ws-opacity").setAttribute("aria-pressed", state.opacityMode ? "true" : "false");
  }

  // --- editor changes -> view and autosave --------------------------------------------------
  editor.on(function (kind, detail) {
    overlay.setShapes(editor.shapes);
    if (kind === "transient") {
      return;
    }
    if (state.selected !== null && !editor.find(state.selected)) {
      state.selected = null;
      state.selectedVertex = null;
      overlay.setSelection(null, null);
    }
    renderShapeList();
    refreshControls();
    if (kind === "change" && !(detail && detail.silent)) {
      markChanged();
    }
  });

  function formatArea(px2) {
    var mpp = config.slide.mpp;
    if (!mpp) {
      return Math.round(px2).toLocaleString() + " px²";
    }
    var um2 = px2 * mpp * mpp;
    return um2 >= 1e5 ? (um2 / 1e6).toFixed(3) + " mm²" : Math.round(um2).toLocaleString() + " µm²";
  }

  function renderShapeList() {
    var list = $("ws-shapes");
    list.textContent = "";
    editor.shapes.forEach(function (shape, index) {
      var c = classById[shape.classId] || { name: "?", color: "#999" };
      var li = document.createElement("li");
      li.className = "shape-row" + (shape.uid === state.selected ? " selected" : "");
      li.dataset.uid = shape.uid;
      var pick = document.createElement("button");
      pick.type = "button";
      pick.className = "shape-pick";
      var holes = HC.geometry.holeCount(shape);
      pick.innerHTML = '<span class="swatch"></span><span class="shape-name"></span>' +
        '<span class="shape-meta"></span>';
      pick.querySelector(".swatch").style.background = c.color;
      pick.querySelector(".shape-name").textContent = (index + 1) + ". " + c.name;
      pick.querySelector(".shape-meta").textContent = formatArea(HC.geometry.shapeArea(shape)) +
        " · " + HC.geometry.vertexCount(shape) + " pts" +
        (holes ? " · " + holes + (holes === 1 ? " hole" : " holes") : "");
      pick.addEventListener("click", function () {
        select(shape.uid);
        if (state.tool !== "move") {
          setTool("move");
        }
      });
      li.appendChild(pick);
      if (!state.readOnly) {
        var del = document.createElement("button");
        del.type = "button";
        del.className = "shape-delete";
        del.setAttribute("aria-label", "Delete shape " + (index + 1));
        del.title = "Delete shape";
        del.textContent = "×";
        del.addEventListener("click", function () {
          editor.deleteShape(shape.uid);
        });
        li.appendChild(del);
      }
      list.appendChild(li);
    });
    $("ws-shape-count").textContent = editor.shapes.length ? "(" + editor.shapes.length + ")" : "";
    $("ws-shapes-empty").hidden = editor.shapes.length > 0;
  }

  function refreshControls() {
    $("ws-undo").disabled = state.readOnly || !(state.drawing ? state.drawing.points.length : editor.canUndo());
    $("ws-redo").disabled = state.readOnly || !(state.drawing ? state.popped.length : editor.canRedo());
    $("ws-delete").disabled = state.readOnly || state.selected === null;
    document.body.dataset.drawingPoints = state.drawing ? state.drawing.points.length : 0;
  }

  // --- autosave --------------------------------------------------------------------------
  function setSaveState(name, text) {
    var node = $("ws-save");
    node.dataset.state = name;
    node.textContent = text;
  }

  function markChanged() {
    state.pending = true;
    state.saveError = "";
    setSaveState("dirty", "Unsaved changes");
    clearTimeout(state.saveTimer);
    state.saveTimer = setTimeout(save, SAVE_DELAY_MS);
  }

  function localVersion() {
    return editor.snapshot() + "|" + state.regionLabel;
  }

  // Send the draft; resolves to true when the server has everything the page has.
  function save() {
    clearTimeout(state.saveTimer);
    if (state.inflight) {
      return state.inflight.then(function () { return state.pending ? save() : true; });
    }
    if (!state.pending) {
      return Promise.resolve(!state.saveError);
    }
    var sent = localVersion();
    var body = {
      shapes: editor.payload(),
      region_label: state.regionLabel,
      time_spent_seconds: Math.round(secondsSpent()),
      shown: config.shown,
    };
    setSaveState("saving", "Saving…");
    state.inflight = HC.api.putWork(config.urls.work, state.etag, body).then(function (result) {
      state.inflight = null;
      if (result.ok) {
        state.etag = result.etag;
        var unchanged = localVersion() === sent;
        if (unchanged) {
          state.pending = false;
          var repairs = result.data.repairs || [];
          if (repairs.length) {
            editor.adopt(result.data.shapes); // what the server stored: clipped / repaired
            notice(repairNotice(repairs), "info");
          }
          setSaveState("saved", "Saved");
        } else {
          state.saveTimer = setTimeout(save, SAVE_DELAY_MS);
        }
        return !state.pending;
      }
      if (result.status === 412) {
        return reloadAfterConflict();
      }
      if (result.status >= 400 && result.status < 500) {
        state.saveError = HC.api.errorText(result);
        setSaveState("error", "Not saved");
        notice("Not saved: " + state.saveError + " Undo or fix the shape.", "error");
        return false;
      }
      setSaveState("error", "Not saved, retrying…");
      state.saveTimer = setTimeout(save, RETRY_MS);
      return false;
    }, function () {
      state.inflight = null;
      setSaveState("error", "Offline, retrying…");
      state.saveTimer = setTimeout(save, RETRY_MS);
      return false;
    });
    return state.inflight;
  }

  function repairNotice(repairs) {
    var clipped = repairs.filter(function (r) { return r.clipped; }).length;
    var fixed = repairs.length - clipped;
    var parts = [];
    if (clipped) {
      parts.push(clipped + (clipped === 1 ? " shape was" : " shapes were") + " clipped to the region");
    }
    if (fixed) {
      parts.push(fixed + (fixed === 1 ? " shape was" : " shapes were") + " repaired (self-crossing)");
    }
    return parts.join("; ") + ".";
  }

  function reloadAfterConflict() {
    setSaveState("conflict", "Conflict");
    return HC.api.getWork(config.urls.work).then(function (result) {
      if (!result.ok) {
        notice("Could not reload the draft: " + HC.api.errorText(result), "error");
        return false;
      }
      applyWork(result);
      setSaveState("conflict", "Conflict: reloaded");
      notice("This draft was saved elsewhere (another tab?). The server's copy is shown now; " +
             "redo your last change if it is missing.", "warn");
      return false;
    });
  }

  function applyWork(result) {
    var work = result.data;
    state.etag = result.etag;
    state.pending = false;
    state.saveError = "";
    state.regionLabel = work.region_label;
    state.baseSeconds = work.time_spent_seconds || 0;
    state.activeSeconds = 0;
    if (state.drawing) {
      cancelDrawing();
    }
    select(null);
    editor.load(work.shapes);
    if ($("ws-region-label")) {
      $("ws-region-label").value = work.region_label === null ? "" : String(work.region_label);
    }
    setReadOnly(work.status === "submitted", work);
  }

  // --- time spent ------------------------------------------------------------------------
  function secondsSpent() {
    return state.baseSeconds + state.activeSeconds;
  }

  function touch() {
    state.lastInput = Date.now();
  }

  ["pointerdown", "pointermove", "keydown", "wheel"].forEach(function (name) {
    window.addEventListener(name, touch, { passive: true, capture: true });
  });

  setInterval(function () {
    var idle = (Date.now() - state.lastInput) / 1000 > IDLE_S;
    if (!state.readOnly && document.visibilityState === "visible" && !idle) {
      state.activeSeconds += 1;
    }
    var total = Math.floor(secondsSpent());
    var m = Math.floor(total / 60), s = total % 60;
    $("ws-timer").textContent = m + ":" + (s < 10 ? "0" : "") + s;
  }, 1000);

  // --- finishing ---------------------------------------------------------------------------
  function setReadOnly(readOnly, work) {
    state.readOnly = readOnly;
    document.body.dataset.submission = work ? work.status : "";
    $("ws-final").hidden = !readOnly;
    if (readOnly && work) {
      var outcome = { shapes: "with shapes", nothing: "as nothing to label",
                      cannot_assess: "as cannot assess" }[work.outcome] || "";
      $("ws-final-text").textContent = "Submitted " + outcome + ". This region is final for you.";
    }
    setTool("move");
    document.querySelectorAll("[data-edit]").forEach(function (node) { node.disabled = readOnly; });
    $("ws-next").disabled = !readOnly;
    $("ws-next").title = readOnly ? "" : "Submit this region first";
    renderShapeList();
    refreshControls();
  }

  function finish(outcome, reason) {
    if (state.readOnly) {
      return;
    }
    if (state.drawing) {
      notice("Finish the outline you are drawing (Enter) or cancel it (Esc) first.", "warn");
      return;
    }
    if (outcome === "shapes" && !editor.shapes.length && config.project.polygonAnnotations &&
        !config.project.regionLabels) {
      notice("Draw at least one shape, or choose Nothing to label or Cannot assess.", "warn");
      return;
    }
    if (outcome !== "shapes" && editor.shapes.length) {
      var n = editor.shapes.length;
      if (!window.confirm("Submitting as \"" + (outcome === "nothing" ? "nothing to label" :
          "cannot assess") + "\" removes your " + n + (n === 1 ? " shape" : " shapes") + ". Continue?")) {
        return;
      }
      editor.change("clear", function () { this.shapes = []; });
    }
    busy(true);
    state.pending = true; // one last save carries the final time spent
    save().then(function (saved) {
      if (!saved) {
        busy(false);
        if (!state.saveError) {
          notice("The draft could not be saved, so it was not submitted. Try again.", "error");
        }
        return null;
      }
      return HC.api.submit(config.urls.submit, state.etag,
                           { outcome: outcome, cannot_assess_reason: reason || "" });
    }).then(function (result) {
      if (!result) {
        return;
      }
      busy(false);
      if (result.ok) {
        state.etag = result.etag;
        setReadOnly(true, result.data);
        setSaveState("saved", "Submitted");
        notice("Submitted. Thank you! Go on with the next region when you are ready.", "ok");
        $("ws-next").focus();
      } else if (result.status === 412) {
        reloadAfterConflict();
      } else {
        notice("Not submitted: " + HC.api.errorText(result), "error");
      }
    }, function () {
      busy(false);
      notice("The server could not be reached; nothing was submitted.", "error");
    });
  }

  function busy(on) {
    document.querySelectorAll("[data-finish]").forEach(function (b) { b.disabled = on || state.readOnly; });
  }

  var noticeTimer = null;
  function notice(text, kind) {
    var node = $("ws-notice");
    node.textContent = text;
    node.dataset.kind = kind || "info";
    node.hidden = false;
    clearTimeout(noticeTimer);
    if (kind !== "error") {
      noticeTimer = setTimeout(function () { node.hidden = true; }, 8000);
    }
  }

  // --- controls ----------------------------------------------------------------------------
  // Class keys: a class's own shortcut, else 1-9 by order among the drawable classes.
  var keyToClass = {};
  drawable.forEach(function (c) {
    if (c.shortcut) {
      keyToClass[c.shortcut.toLowerCase()] = c.id;
    }
  });
  drawable.forEach(function (c, i) {
    var digit = String(i + 1);
    if (i < 9 && !keyToClass[digit] && !c.shortcut) {
      keyToClass[digit] = c.id;
    }
  });
  Object.keys(keyToClass).forEach(function (key) {
    var kbd = document.querySelector("[data-class-id='" + keyToClass[key] + "'] kbd");
    if (kbd) {
      kbd.textContent = key.toUpperCase();
    }
  });

  document.querySelectorAll("[data-class-id]").forEach(function (button) {
    button.addEventListener("click", function () { setClass(Number(button.dataset.classId)); });
  });
  document.querySelectorAll("[data-tool]").forEach(function (button) {
    button.addEventListener("click", function () { setTool(button.dataset.tool); });
  });
  $("ws-undo").addEventListener("click", undo);
  $("ws-redo").addEventListener("click", redo);
  $("ws-delete").addEventListener("click", deleteSelection);
  $("ws-opacity").addEventListener("click", cycleOpacity);
  $("ws-zoom-region").addEventListener("click", function () { zoomToRegion(false); });
  $("ws-submit").addEventListener("click", function () { finish("shapes"); });
  $("ws-nothing").addEventListener("click", function () { finish("nothing"); });

  var guidelines = $("ws-guidelines");
  $("ws-guidelines-open").addEventListener("click", function () { guidelines.showModal(); });

  var cannot = $("ws-cannot-dialog");
  $("ws-cannot").addEventListener("click", function () {
    if (!state.readOnly) {
      $("ws-cannot-reason").value = "";
      cannot.showModal();
    }
  });
  document.querySelectorAll("[data-reason]").forEach(function (button) {
    button.addEventListener("click", function () {
      $("ws-cannot-reason").value = button.dataset.reason;
      $("ws-cannot-reason").focus();
    });
  });
  $("ws-cannot-form").addEventListener("submit", function (event) {
    if (event.submitter && event.submitter.value === "cancel") {
      return;
    }
    var reason = $("ws-cannot-reason").value.trim();
    if (!reason) {
      event.preventDefault();
      $("ws-cannot-reason").focus();
      return;
    }
    finish("cannot_assess", reason);
  });

  if ($("ws-region-label")) {
    $("ws-region-label").addEventListener("change", function (event) {
      state.regionLabel = event.target.value ? Number(event.target.value) : null;
      markChanged();
    });
  }

  var TOOL_KEYS = { v: "move", p: "polygon", f: "freehand", h: "hole" };
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (document.querySelector("dialog[open]") ||
        (target && /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) {
      return;
    }
    var key = event.key.toLowerCase();
    if ((event.ctrlKey || event.metaKey) && (key === "z" || key === "y")) {
      event.preventDefault();
      if (key === "y" || event.shiftKey) {
        redo();
      } else {
        undo();
      }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) {
      return;
    }
    if (key === "enter" && state.drawing) {
      event.preventDefault();
      closeDrawing();
    } else if (key === "escape") {
      if (state.drawing) {
        cancelDrawing();
      } else {
        select(null);
      }
    } else if (key === "backspace" && state.drawing) {
      event.preventDefault();
      undo();
    } else if (key === "delete" || key === "backspace") {
      event.preventDefault();
      deleteSelection();
    } else if (keyToClass[key] !== undefined) {
      setClass(keyToClass[key]);
    } else if (TOOL_KEYS[key]) {
      setTool(TOOL_KEYS[key]);
    } else if (key === "o") {
      cycleOpacity();
    } else if (key === "r") {
      zoomToRegion(false);
    } else if (key === "g" || key === "?") {
      guidelines.showModal();
    }
  });

  window.addEventListener("beforeunload", function (event) {
    if (state.pending && !state.readOnly) {
      save();
      event.preventDefault();
      event.returnValue = "";
    }
  });

  // --- start -------------------------------------------------------------------------------
  setTool("move");
  if (state.classId !== null) {
    setClass(state.classId);
  }
  setSaveState("loading", "Loading…");
  HC.api.getWork(config.urls.work).then(function (result) {
    if (!result.ok) {
      setSaveState("error", "Not loaded");
      notice("The draft could not be loaded: " + HC.api.errorText(result), "error");
      return;
    }
    applyWork(result);
    setSaveState("saved", result.data.status === "submitted" ? "Submitted" : "Saved");
    document.body.dataset.workLoaded = "yes";
  });

  // For tests and the browser console.
  window.histocrowdWorkspace = { editor: editor, state: state, save: save, overlay: overlay };
})(window.HC = window.HC || {});
