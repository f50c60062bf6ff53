// The Outlook task pane: the people on the open message, and the team's record of each.
// Everything that comes from mail or from the CRM is set as text, never parsed as markup.
"use strict";
(function () {
  const body = document.body;
  let latest = 0;
  let current = "";
  // Outlook on the web frames the pane in its own site, where the app's session cookie is
  // withheld: the sign-in dialog hands over a pane token instead (agent/web/addin.py).
  let paneToken = sessionStorage.getItem("crm-sync-pane-token") || "";

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function byId(id) {
    return document.getElementById(id);
  }

  function status(text) {
    const line = byId("status");
    line.textContent = text || "";
    line.hidden = !text;
  }

  function ago(iso) {
    const seconds = (Date.now() - Date.parse(iso)) / 1000;
    if (!(seconds >= 0)) return "just now";
    const units = [["day", 86400], ["hour", 3600], ["minute", 60]];
    for (const [unit, size] of units) {
      if (seconds >= size) {
        const n = Math.floor(seconds / size);
        return n + " " + unit + (n === 1 ? "" : "s") + " ago";
      }
    }
    return "just now";
  }

  function card(title) {
    const section = el("section", "card");
    section.append(el("h2", "", title));
    return section;
  }

  function people(item, me) {
    const seen = new Set();
    const found = [];
    function add(person) {
      if (!person || !person.emailAddress) return;
      const key = String(person.emailAddress).toLowerCase();
      if (seen.has(key) || key === me) return;
      seen.add(key);
      found.push({ address: String(person.emailAddress), name: String(person.displayName || "") });
    }
    add(item.from);
    add(item.sender);
    (item.to || []).forEach(add);
    (item.cc || []).forEach(add);
    return found;
  }

  function showPeople(found) {
    const nav = byId("people");
    nav.replaceChildren();
    nav.hidden = found.length < 2;
    for (const person of found) {
      const button = el("button", "person", person.name || person.address);
      button.type = "button";
      button.title = person.address;
      button.dataset.address = person.address;
      button.addEventListener("click", function () {
        load(person.address);
      });
      nav.append(button);
    }
  }

  function mark(address) {
    for (const button of byId("people").querySelectorAll("button")) {
      button.setAttribute("aria-pressed", String(button.dataset.address === address));
    }
  }

  function signedOut(afterSignIn) {
    byId("record").hidden = true;
    byId("viewer").textContent = "";
    byId("sign-in").hidden = false;
    status("");
    if (afterSignIn) {
      signInError("The sign-in did not reach this pane; sign in again.");
    }
  }

  function renderNone(address) {
    const box = byId("record");
    const section = card("Not in crm-sync");
    section.append(el("p", "muted", address + " has no record yet."));
    box.replaceChildren(section);
    box.hidden = false;
    status("");
  }

  function renderHead(record) {
    const head = el("header", "head");
    head.append(el("h1", "name", record.name || record.address));
    const line = el("p", "muted", record.emails.join(", "));
    if (record.company) line.append(" · ", el("span", "company", record.company));
    head.append(line);
    const open = el("a", "open", "Open in crm-sync");
    open.href = record.url;
    open.target = "_blank";
    open.rel = "noopener";
    head.append(open);
    return head;
  }

  function renderLast(record) {
    const section = card("Last conversation");
    section.classList.add("last");
    if (!record.last) {
      section.append(el("p", "muted", "None visible to you."));
      return section;
    }
    const line = el("p");
    line.append(el("strong", "subject", record.last.subject || "(no subject)"));
    line.append(" — " + record.last.kind + ", " + ago(record.last.occurred_at));
    section.append(line);
    return section;
  }

  function renderTeammates(record) {
    const section = card("Who on the team knows them");
    section.classList.add("knows");
    if (!record.teammates.length) {
      section.append(el("p", "muted", "No teammate has been in touch yet."));
      return section;
    }
    const list = el("ol", "teammates");
    for (const mate of record.teammates) {
      const item = el("li");
      const count = mate.interactions + " interaction" + (mate.interactions === 1 ? "" : "s");
      item.append(el("strong", "", mate.name || mate.email), " ");
      item.append(el("span", "muted", count + ", last " + ago(mate.last_at)));
      list.append(item);
    }
    section.append(list);
    return section;
  }

  function renderFields(record) {
    const section = card("Fields");
    section.classList.add("fields");
    if (!record.fields.length) {
      section.append(el("p", "muted", "No fields set."));
      return section;
    }
    const list = el("dl");
    for (const field of record.fields) {
      list.append(el("dt", "", field.name), el("dd", "", field.value));
    }
    section.append(list);
    return section;
  }

  function render(record) {
    byId("sign-in").hidden = true;
    byId("viewer").textContent = record.viewer;
    const parts = [renderHead(record), renderLast(record), renderTeammates(record)];
    parts.push(renderFields(record));
    if (record.not_shown) {
      const n = record.not_shown;
      const text = n + " private interaction" + (n === 1 ? "" : "s") +
        " in someone else's mailbox not shown";
      parts.push(el("p", "muted hidden-count", text));
    }
    const box = byId("record");
    box.replaceChildren(...parts);
    box.hidden = false;
    status("");
  }

  async function load(address, afterSignIn) {
    const asked = ++latest;
    current = address;
    mark(address);
    status("Looking up " + address + "…");
    let response;
    try {
      const headers = { accept: "application/json" };
      if (paneToken) headers.authorization = "Bearer " + paneToken;
      response = await fetch("/addin/record?address=" + encodeURIComponent(address), {
        credentials: "same-origin",
        headers: headers,
      });
    } catch (error) {
      if (asked === latest) status("crm-sync could not be reached.");
      return;
    }
    if (asked !== latest) return;
    if (response.status === 401) {
      paneToken = "";
      sessionStorage.removeItem("crm-sync-pane-token");
      return signedOut(afterSignIn);
    }
    if (response.status === 404) return renderNone(address);
    if (!response.ok) return status("crm-sync answered " + response.status + ".");
    const record = await response.json();
    if (asked === latest) render(record);
  }

  function readMessage() {
    const mailbox = Office.context.mailbox;
    const item = mailbox && mailbox.item;
    if (!item) return status("Open a message to see its people.");
    const profile = mailbox.userProfile;
    const me = String((profile && profile.emailAddress) || "").toLowerCase();
    const found = people(item, me);
    showPeople(found);
    if (!found.length) return status("No one else is on this message.");
    load(found[0].address);
  }

  function signInError(text) {
    const line = byId("sign-in-error");
    line.textContent = text;
    line.hidden = false;
  }

  function signIn(event) {
    const ui = window.Office && Office.context && Office.context.ui;
    if (!ui || !ui.displayDialogAsync) return;
    event.preventDefault();
    const url = location.origin + event.currentTarget.dataset.dialog;
    ui.displayDialogAsync(url, { height: 60, width: 30 }, function (result) {
      if (result.status !== Office.AsyncResultStatus.Succeeded) {
        signInError("The sign-in window did not open: " + result.error.message);
        return;
      }
      const dialog = result.value;
      dialog.addEventHandler(Office.EventType.DialogMessageReceived, function (arg) {
        if (arg.origin && arg.origin !== location.origin) return;
        let told;
        try {
          told = JSON.parse(arg.message);
        } catch (error) {
          return;
        }
        if (!told || told.signedIn !== true || typeof told.token !== "string") return;
        paneToken = told.token;
        sessionStorage.setItem("crm-sync-pane-token", paneToken);
        dialog.close();
        byId("sign-in-error").hidden = true;
        if (current) load(current, true);
        else readMessage();
      });
    });
  }

  function taskpane() {
    byId("sign-in-button").addEventListener("click", signIn);
    if (!window.Office || !Office.onReady) {
      status("Open this pane from a message in Outlook.");
      return;
    }
    Office.onReady(function () {
      readMessage();
      const mailbox = Office.context.mailbox;
      if (mailbox && mailbox.addHandlerAsync && Office.EventType.ItemChanged) {
        mailbox.addHandlerAsync(Office.EventType.ItemChanged, readMessage);
      }
    });
  }

  function signedIn() {
    if (body.dataset.signedIn !== "yes" || !window.Office || !Office.onReady) return;
    Office.onReady(function () {
      const ui = Office.context.ui;
      const message = { signedIn: true, token: body.dataset.paneToken || "" };
      if (ui && ui.messageParent) ui.messageParent(JSON.stringify(message));
    });
  }

  if (body.dataset.page === "taskpane") taskpane();
  if (body.dataset.page === "signed-in") signedIn();
})();
