// The sandbox page: pick a persona, chat through the real webhook, watch pushes arrive.
"use strict";

const POLL_MS = 1500;
const STATE_MS = 10000;
const FLASH_MS = 8000;
const CLOCK_BUTTONS = ["plus1h", "plus1", "plus7", "plus30", "next"];
const $ = (id) => document.getElementById(id);

const page = {
  persona: null, seq: 0, polling: false, state: null, search: "",
  queue: Promise.resolve(), pending: 0, moving: false, flashing: null,
};

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  };
  const response = await fetch("/sandbox/api/" + path, options);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(data.error || "出错了，请再试一次。");
  }
  return data;
}

function mode() {
  return $("safe").checked ? "safe" : "plain";
}

// --- the clock, the roster, the menu ---

async function loadState() {
  const state = await api("state");
  page.state = state;
  const ahead = state.days_ahead ? `（往前拨了 ${state.days_ahead} 天）` : "";
  $("date").textContent = `沙盒时间：${state.date} ${state.time}${ahead}`;
  for (const id of CLOCK_BUTTONS) {
    $(id).disabled = !state.clock_movable || page.moving;
  }
  $("safe").disabled = !state.safe_mode;
  if (!state.safe_mode) {
    $("safe").checked = false;
  }
  $("demo").hidden = state.roster > 0;
  if (!page.flashing) {
    $("notice").hidden = !state.notice;
    $("notice").textContent = state.notice;
  }
  drawMenu(state.menu);
  return state;
}

function drawMenu(buttons) {
  const menu = $("menu");
  if (menu.dataset.drawn) {
    return;
  }
  menu.dataset.drawn = "1";
  for (const button of buttons) {
    const top = document.createElement("button");
    top.type = "button";
    top.className = "top";
    top.textContent = button.sub.length ? "≡ " + button.name : button.name;
    top.addEventListener("click", () => {
      closeSubmenu();
      if (button.sub.length) {
        openSubmenu(top, button.sub);
      } else {
        act({ kind: "click", key: button.key });
      }
    });
    menu.appendChild(top);
  }
}

function openSubmenu(anchor, subs) {
  const box = document.createElement("div");
  box.className = "submenu";
  box.id = "submenu";
  for (const sub of subs) {
    const item = document.createElement("button");
    item.type = "button";
    item.textContent = sub.name;
    item.addEventListener("click", () => {
      closeSubmenu();
      return act({ kind: "click", key: sub.key });
    });
    box.appendChild(item);
  }
  $("menu").appendChild(box);
}

function closeSubmenu() {
  const open = $("submenu");
  if (open) {
    open.remove();
  }
}

// A line under the banner for a while (what the clock was moved to, or why it was not).
function flash(text) {
  clearTimeout(page.flashing);
  $("notice").textContent = text;
  $("notice").hidden = false;
  page.flashing = setTimeout(() => {
    page.flashing = null;
    const notice = page.state ? page.state.notice : "";
    $("notice").textContent = notice;
    $("notice").hidden = !notice;
  }, FLASH_MS);
}

// One move at a time: the buttons wait for the jobs the last move ran.
async function moveClock(step) {
  if (page.moving) {
    return;
  }
  page.moving = true;
  for (const id of CLOCK_BUTTONS) {
    $(id).disabled = true;
  }
  try {
    const moved = await api("clock", step);
    if (moved.next) {
      flash(`到下一件事：${moved.next}`);
    }
  } catch (error) {
    flash(error.message);
  } finally {
    page.moving = false;
    await loadState().catch(() => {});
    await poll();
  }
}

async function makeDemo() {
  $("make-demo").disabled = true;
  $("make-demo").textContent = "正在建…";
  try {
    const result = await api("demo", {});
    $("demo-result").hidden = false;
    $("demo-result").textContent = result.lines.join("\n");
    await loadPersonas();
    await loadState();
    $("demo").hidden = false;  // keep the summary in view once
    $("make-demo").hidden = true;
  } catch (error) {
    alert(error.message);
    $("make-demo").disabled = false;
    $("make-demo").textContent = "建一个示范县";
  }
}

// --- personas ---

async function loadPersonas() {
  const query = page.search ? "?q=" + encodeURIComponent(page.search) : "";
  const data = await api("personas" + query);
  const groups = $("groups");
  groups.textContent = "";
  for (const group of data.groups) {
    if (!group.people.length) {
      continue;
    }
    const title = document.createElement("h3");
    title.textContent = `${group.label}（共 ${group.total} 人）`;
    groups.appendChild(title);
    for (const person of group.people) {
      groups.appendChild(personButton(person));
    }
  }
}

function personButton(person) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "person" + (page.persona && page.persona.openid === person.openid ? " current" : "");
  const name = document.createElement("span");
  name.className = "name";
  name.textContent = person.name;
  button.appendChild(name);
  const badges = [];
  if (person.roles.length > 1) {
    badges.push([person.roles.join("、"), ""]);
  }
  if (person.bound) {
    badges.push(["已绑定", "bound"]);
  } else if (person.bound_to) {
    badges.push(["绑成了" + person.bound_to, ""]);
  }
  if (person.case) {
    badges.push([person.case, ""]);
  }
  for (const [text, kind] of badges) {
    const badge = document.createElement("span");
    badge.className = "badge " + kind;
    badge.textContent = text;
    button.appendChild(badge);
  }
  const where = document.createElement("span");
  where.className = "where";
  where.textContent = person.where;
  button.appendChild(where);
  button.addEventListener("click", () => choose(person));
  return button;
}

async function choose(person) {
  page.persona = person;
  page.seq = 0;
  $("messages").textContent = "";
  showWaiting([]);
  if (page.pending) {
    typing(true);
  }
  showPersona(person);
  for (const button of document.querySelectorAll(".person")) {
    button.classList.remove("current");
  }
  // On a phone the list gives way to the chat at once (「换人」 brings it back).
  document.body.classList.add("chatting");
  window.scrollTo(0, 0);
  await loadPersonas();
  await poll();
}

function backToList() {
  document.body.classList.remove("chatting");
  const current = document.querySelector(".person.current");
  if (current) {
    current.scrollIntoView({ block: "center" });
  }
}

function showPersona(person) {
  $("who").textContent = `${person.name}（${person.role_label}）`;
  $("where").textContent = person.where;
  $("bind").hidden = person.bound;
  $("scan").hidden = !person.bound;
}

// --- the chat ---

function append(entries) {
  const box = $("messages");
  const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  for (const entry of entries) {
    if (entry.seq <= page.seq) {
      continue;
    }
    page.seq = entry.seq;
    const bubble = document.createElement("div");
    bubble.className = `bubble side-${entry.side} kind-${entry.kind}`;
    if (entry.label) {
      const label = document.createElement("span");
      label.className = "label";
      label.textContent = entry.label;
      bubble.appendChild(label);
    }
    let text = entry.text;
    if (entry.kind === "template" && text.includes("\n")) {
      // A template message: its title stands above its fields, as on the phone.
      const title = document.createElement("strong");
      title.className = "title";
      title.textContent = text.slice(0, text.indexOf("\n"));
      bubble.appendChild(title);
      text = text.slice(text.indexOf("\n") + 1);
    }
    bubble.appendChild(document.createTextNode(text));
    if (entry.side !== "note") {
      const at = document.createElement("span");
      at.className = "at";
      at.textContent = entry.at;
      bubble.appendChild(at);
    }
    box.appendChild(bubble);
  }
  const waitingLine = $("typing");
  if (waitingLine) {
    box.appendChild(waitingLine);  // keep "正在回复" under the newest bubble
  }
  if (entries.length && (nearBottom || entries.some((e) => e.side === "me"))) {
    box.scrollTop = box.scrollHeight;
  }
}

function showWaiting(items) {
  const box = $("waiting");
  box.hidden = !items || !items.length;
  box.textContent = (items || []).map((item) => `${item.at}：${item.text}`).join("\n");
}

async function poll() {
  if (!page.persona || page.polling) {
    return;
  }
  page.polling = true;
  const openid = page.persona.openid;
  try {
    const data = await api(`chat?openid=${encodeURIComponent(openid)}&after=${page.seq}`);
    if (page.persona && page.persona.openid === openid) {
      append(data.entries);
      showWaiting(data.waiting);
    }
  } catch (error) {
    // The server may be restarting; the next round tries again.
  } finally {
    page.polling = false;
  }
}

function typing(on) {
  const existing = $("typing");
  if (on && !existing) {
    const line = document.createElement("div");
    line.id = "typing";
    line.className = "typing";
    line.textContent = "公众号正在回复…";
    $("messages").appendChild(line);
    $("messages").scrollTop = $("messages").scrollHeight;
  } else if (!on && existing) {
    existing.remove();
  }
}

// A phone sends in order: what is typed while a reply is on its way waits its turn.
function post(path, body) {
  if (!page.persona) {
    alert("先在左边选一个人。");
    return Promise.resolve();
  }
  const openid = page.persona.openid;
  page.pending += 1;
  typing(true);
  page.queue = page.queue.then(() => send(path, openid, body)).finally(() => {
    page.pending -= 1;
    if (!page.pending) {
      typing(false);
    }
  });
  return page.queue;
}

async function send(path, openid, body) {
  const mine = () => page.persona && page.persona.openid === openid;
  try {
    const after = mine() ? page.seq : 0;
    const data = await api(path, { openid, mode: mode(), after, ...body });
    if (mine()) {
      append(data.entries);
      showWaiting(data.waiting);
      if (data.persona) {
        page.persona = data.persona;
        showPersona(data.persona);
      }
    }
    loadPersonas().catch(() => {});
  } catch (error) {
    alert(error.message);
  }
}

function act(body) {
  return post("send", body);
}

async function sendText(event) {
  event.preventDefault();
  const text = $("text").value.trim();
  if (!text) {
    return;
  }
  $("text").value = "";
  await act({ kind: "text", text });
  $("text").focus();
}

function sendVoice() {
  const text = prompt("这条语音说了什么？（就是微信转出的文字；不填就当没转出文字）", "");
  if (text !== null) {
    act({ kind: "voice", text: text.trim() });
  }
}

// --- start ---

function start() {
  $("form").addEventListener("submit", sendText);
  $("photo").addEventListener("click", () => act({ kind: "photo" }));
  $("voice").addEventListener("click", sendVoice);
  $("bind").addEventListener("click", () => post("bind", {}));
  $("scan").addEventListener("click", () => post("scan", {}));
  $("plus1h").addEventListener("click", () => moveClock({ hours: 1 }));
  $("plus1").addEventListener("click", () => moveClock({ days: 1 }));
  $("plus7").addEventListener("click", () => moveClock({ days: 7 }));
  $("plus30").addEventListener("click", () => moveClock({ days: 30 }));
  $("next").addEventListener("click", () => moveClock({ next: true }));
  $("switch").addEventListener("click", backToList);
  $("make-demo").addEventListener("click", makeDemo);
  let searching = null;
  $("search").addEventListener("input", () => {
    clearTimeout(searching);
    searching = setTimeout(() => {
      page.search = $("search").value.trim();
      loadPersonas();
    }, 250);
  });
  document.addEventListener("click", (event) => {
    if (!event.target.closest(".menu")) {
      closeSubmenu();
    }
  });
  loadState().then(loadPersonas).catch((error) => alert(error.message));
  setInterval(poll, POLL_MS);
  setInterval(() => loadState().catch(() => {}), STATE_MS);
}

start();
