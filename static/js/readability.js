/*
 * Live reading grades in the admin's write-up form.
 *
 * Each section's help text holds a <span class="reading-grade"
 * data-readability-url="…" data-readability-input="id_summary" aria-live="polite">
 * with the saved text's grade (carecodes/readability_admin.py). As the author types,
 * this script posts the field's text to that URL, a moment after the typing stops,
 * and writes the answer into the span. Without it the saved text's grade stays.
 * A grade only warns: nothing here stops a save.
 */
(function () {
  "use strict";

  var DEBOUNCE_MS = 600;
  var HARD = "reading-grade--hard";

  function csrfToken(input) {
    var field = input.form && input.form.querySelector("[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  function Grade(note) {
    this.note = note;
    this.url = note.getAttribute("data-readability-url");
    this.input = document.getElementById(note.getAttribute("data-readability-input"));
    this.timer = null;
    this.controller = null;
    if (this.input) {
      this.input.addEventListener("input", this.onInput.bind(this));
    }
  }

  Grade.prototype.onInput = function () {
    var self = this;
    window.clearTimeout(this.timer);
    this.timer = window.setTimeout(function () {
      self.fetch();
    }, DEBOUNCE_MS);
  };

  Grade.prototype.fetch = function () {
    var self = this;
    // Only the answer for the latest text may be shown.
    if (this.controller) {
      this.controller.abort();
    }
    this.controller = new AbortController();
    var body = new FormData();
    body.append("text", this.input.value);
    window
      .fetch(this.url, {
        method: "POST",
        body: body,
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken(this.input) },
        signal: this.controller.signal,
      })
      .then(function (response) {
        return response.json().then(function (data) {
          return { ok: response.ok, data: data };
        });
      })
      .then(function (answer) {
        if (answer.ok) {
          self.show(answer.data.message, answer.data.hard);
        } else {
          self.show(answer.data.error || "The reading grade is not available.", true);
        }
      })
      .catch(function (error) {
        if (error.name !== "AbortError") {
          self.show("The reading grade is not available just now.", false);
        }
      });
  };

  Grade.prototype.show = function (message, hard) {
    if (this.note.textContent !== message) {
      this.note.textContent = message;
    }
    this.note.classList.toggle(HARD, Boolean(hard));
  };

  function start() {
    var notes = document.querySelectorAll(".reading-grade[data-readability-url]");
    for (var i = 0; i < notes.length; i++) {
      new Grade(notes[i]);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
