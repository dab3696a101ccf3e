// Fetch helpers for the annotation API: JSON in and out, CSRF, ETag / If-Match versions.
(function (HC) {
  "use strict";

  function csrfToken() {
    // The cookie is the source Django checks against; the meta tag covers a page whose cookie
    // was not set yet (first visit after login).
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (match) {
      return decodeURIComponent(match[1]);
    }
    var meta = document.querySelector("meta[name=csrf-token]");
    return meta ? meta.content : "";
  }

  // Resolves to {status, ok, data, etag}; rejects only when the network fails.
  function request(method, url, options) {
    options = options || {};
    var headers = { Accept: "application/json" };
    if (method !== "GET" && method !== "HEAD") {
      headers["X-CSRFToken"] = csrfToken();
    }
    if (options.body !== undefined) {
      headers["Content-Type"] = "application/json";
    }
    if (options.etag) {
      headers["If-Match"] = options.etag;
    }
    return fetch(url, {
      method: method,
      credentials: "same-origin",
      cache: "no-store",
      headers: headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    }).then(function (response) {
      var etag = response.headers.get("ETag");
      var type = response.headers.get("Content-Type") || "";
      var parse = type.indexOf("json") >= 0 ? response.json() : Promise.resolve(null);
      return parse.then(function (data) {
        return { status: response.status, ok: response.ok, data: data, etag: etag };
      });
    });
  }

  // A readable message from a DRF error body ({detail} or {field: [messages]}).
  function errorText(result) {
    var data = result && result.data;
    if (!data) {
      return "the server answered " + (result ? result.status : "nothing");
    }
    if (typeof data.detail === "string") {
      return data.detail;
    }
    return Object.keys(data).map(function (key) {
      var value = data[key];
      return key + ": " + (Array.isArray(value) ? value.join(" ") : JSON.stringify(value));
    }).join("; ");
  }

  HC.api = {
    csrfToken: csrfToken,
    errorText: errorText,
    getWork: function (url) { return request("GET", url); },
    putWork: function (url, etag, body) { return request("PUT", url, { etag: etag, body: body }); },
    submit: function (url, etag, body) { return request("POST", url, { etag: etag, body: body }); },
  };
})(window.HC = window.HC || {});
