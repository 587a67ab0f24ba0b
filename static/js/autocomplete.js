/*
 * Search suggestions for the site's search boxes.
 *
 * Turns each <input data-suggest="/search/suggest/"> into the WAI-ARIA 1.2 combobox
 * pattern with a listbox popup. Without this script the boxes stay plain search
 * forms that work on their own; nothing here is needed to search.
 *
 * Keys: ArrowDown/ArrowUp move through the suggestions (opening the list if needed),
 * Home/End jump to the first/last one while one is chosen, Enter opens the chosen
 * suggestion (or submits the form when none is chosen), Escape closes the list.
 */
(function () {
  "use strict";

  var DEBOUNCE_MS = 150;
  // The server answers nothing for shorter input; asking would only cost a request.
  var MIN_LENGTH = 2;
  var KIND_LABELS = { code: "Code", "write-up": "Write-up", policy: "Policy" };

  function Combobox(input) {
    this.input = input;
    this.endpoint = input.getAttribute("data-suggest");
    this.items = [];
    this.active = -1;
    this.timer = null;
    this.controller = null;
    this.shownQuery = null;

    var base = input.id || "search";
    // Moving the input drops focus, and someone may already be typing in it.
    var hadFocus = document.activeElement === input;
    this.wrapper = document.createElement("div");
    this.wrapper.className = "combobox";
    input.parentNode.insertBefore(this.wrapper, input);
    this.wrapper.appendChild(input);
    if (hadFocus) {
      input.focus();
    }

    this.listbox = document.createElement("ul");
    this.listbox.id = base + "-suggestions";
    this.listbox.className = "suggestions";
    this.listbox.setAttribute("role", "listbox");
    this.listbox.setAttribute("aria-label", "Suggestions");
    this.listbox.hidden = true;
    this.wrapper.appendChild(this.listbox);

    this.status = document.createElement("div");
    this.status.className = "visually-hidden";
    this.status.setAttribute("role", "status");
    this.status.setAttribute("aria-live", "polite");
    this.wrapper.appendChild(this.status);

    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-expanded", "false");
    input.setAttribute("aria-controls", this.listbox.id);

    input.addEventListener("input", this.onInput.bind(this));
    input.addEventListener("keydown", this.onKeydown.bind(this));
    input.addEventListener("blur", this.close.bind(this));
    // mousedown would move focus out of the input (and close the list) before click.
    this.listbox.addEventListener("mousedown", function (event) {
      event.preventDefault();
    });
    this.listbox.addEventListener("click", this.onClick.bind(this));
  }

  Combobox.prototype.onInput = function () {
    var self = this;
    window.clearTimeout(this.timer);
    var query = this.input.value.trim();
    if (query.length < MIN_LENGTH) {
      this.abort();
      this.render([], query);
      return;
    }
    this.timer = window.setTimeout(function () {
      self.fetch(query);
    }, DEBOUNCE_MS);
  };

  Combobox.prototype.abort = function () {
    if (this.controller) {
      this.controller.abort();
      this.controller = null;
    }
  };

  Combobox.prototype.fetch = function (query) {
    var self = this;
    // Only the newest request may fill the list: a slow older answer is dropped.
    this.abort();
    var controller = new AbortController();
    this.controller = controller;
    var url = new URL(this.endpoint, window.location.href);
    url.searchParams.set("q", query);
    window
      .fetch(url, {
        signal: controller.signal,
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("suggestions unavailable");
        }
        return response.json();
      })
      .then(function (data) {
        if (self.controller !== controller) {
          return;
        }
        self.controller = null;
        var list = Array.isArray(data.suggestions) ? data.suggestions : [];
        self.render(list.slice(0, 10), query);
      })
      .catch(function () {
        // Aborted or failed: the form still works, so say nothing and show nothing.
        if (self.controller === controller) {
          self.controller = null;
          self.render([], query);
        }
      });
  };

  Combobox.prototype.render = function (suggestions, query) {
    var self = this;
    this.items = suggestions.filter(function (item) {
      return item && typeof item.label === "string" && isSameSite(item.url);
    });
    this.active = -1;
    this.input.removeAttribute("aria-activedescendant");
    this.listbox.textContent = "";
    this.items.forEach(function (item, index) {
      var option = document.createElement("li");
      option.id = self.listbox.id + "-" + index;
      option.className = "suggestion";
      option.setAttribute("role", "option");
      option.setAttribute("aria-selected", "false");
      // textContent only: suggestion text never becomes markup.
      var label = document.createElement("span");
      label.className = "suggestion-label";
      label.textContent = item.label;
      option.appendChild(label);
      var meta = [KIND_LABELS[item.kind] || "", item.detail || ""].filter(Boolean);
      if (meta.length) {
        var detail = document.createElement("span");
        detail.className = "suggestion-detail";
        detail.textContent = meta.join(" · ");
        option.appendChild(detail);
      }
      self.listbox.appendChild(option);
    });
    if (this.items.length && document.activeElement === this.input) {
      this.open();
    } else {
      this.close();
    }
    if (query !== this.shownQuery && query.length >= MIN_LENGTH) {
      this.announce(this.items.length);
    }
    this.shownQuery = query;
  };

  Combobox.prototype.announce = function (count) {
    this.status.textContent =
      count === 0
        ? "No suggestions."
        : count +
          (count === 1 ? " suggestion" : " suggestions") +
          ". Use the up and down arrow keys to choose.";
  };

  Combobox.prototype.isOpen = function () {
    return !this.listbox.hidden;
  };

  Combobox.prototype.open = function () {
    if (!this.items.length) {
      return;
    }
    this.listbox.hidden = false;
    this.input.setAttribute("aria-expanded", "true");
  };

  Combobox.prototype.close = function () {
    this.setActive(-1);
    this.listbox.hidden = true;
    this.input.setAttribute("aria-expanded", "false");
  };

  Combobox.prototype.setActive = function (index) {
    var options = this.listbox.children;
    if (this.active >= 0 && options[this.active]) {
      options[this.active].setAttribute("aria-selected", "false");
    }
    this.active = index;
    if (index >= 0 && options[index]) {
      options[index].setAttribute("aria-selected", "true");
      this.input.setAttribute("aria-activedescendant", options[index].id);
      options[index].scrollIntoView({ block: "nearest" });
    } else {
      this.input.removeAttribute("aria-activedescendant");
    }
  };

  Combobox.prototype.move = function (step) {
    var count = this.items.length;
    if (!count) {
      // A box filled in before the script ran has had no suggestions yet.
      var query = this.input.value.trim();
      if (query.length >= MIN_LENGTH && !this.controller) {
        this.fetch(query);
      }
      return;
    }
    if (!this.isOpen()) {
      this.open();
      this.setActive(step > 0 ? 0 : count - 1);
      return;
    }
    var next = this.active < 0 ? (step > 0 ? 0 : count - 1) : this.active + step;
    this.setActive((next + count) % count);
  };

  Combobox.prototype.go = function (index) {
    var item = this.items[index];
    if (item) {
      this.close();
      window.location.assign(item.url);
    }
  };

  Combobox.prototype.onKeydown = function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey) {
      return;
    }
    switch (event.key) {
      case "ArrowDown":
        event.preventDefault();
        this.move(1);
        break;
      case "ArrowUp":
        event.preventDefault();
        this.move(-1);
        break;
      case "Home":
      case "End":
        // With no suggestion chosen, Home and End move the caret as usual.
        if (this.isOpen() && this.active >= 0) {
          event.preventDefault();
          this.setActive(event.key === "Home" ? 0 : this.items.length - 1);
        }
        break;
      case "Enter":
        if (this.isOpen() && this.active >= 0) {
          event.preventDefault();
          this.go(this.active);
        } else {
          this.close(); // and the form submits as it would without this script
        }
        break;
      case "Escape":
        if (this.isOpen()) {
          event.preventDefault();
          this.close();
        }
        break;
      case "Tab":
        this.close();
        break;
      default:
        break;
    }
  };

  Combobox.prototype.onClick = function (event) {
    var option = event.target.closest("[role=option]");
    if (option && this.listbox.contains(option)) {
      this.go(Array.prototype.indexOf.call(this.listbox.children, option));
    }
  };

  function isSameSite(url) {
    if (typeof url !== "string") {
      return false;
    }
    try {
      return new URL(url, window.location.href).origin === window.location.origin;
    } catch (error) {
      return false;
    }
  }

  function start() {
    if (!("fetch" in window) || !("AbortController" in window)) {
      return;
    }
    var inputs = document.querySelectorAll("input[data-suggest]");
    var boxes = Array.prototype.map.call(inputs, function (input) {
      return new Combobox(input);
    });
    // A page restored from the back/forward cache must not show a stale list.
    window.addEventListener("pageshow", function () {
      boxes.forEach(function (box) {
        box.close();
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
