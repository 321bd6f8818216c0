// /join: a student types the class code and a display name (POST /api/classes/join).
import { request } from "./api.js";

const $ = (id) => document.getElementById(id);

function showCurrent(mine) {
  $("current").textContent = mine.class
    ? `You are in “${mine.class.name}” as ${mine.display_name}. Joining another class leaves this one.`
    : "";
}

async function main() {
  showCurrent(await request("GET", "/api/classes/mine"));
  $("join-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("join-error").textContent = "";
    try {
      const joined = await request("POST", "/api/classes/join", {
        code: $("join-code").value,
        display_name: $("join-name").value,
      });
      showCurrent(joined);
      const link = document.createElement("a");
      link.href = "/";
      link.className = "button primary";
      link.textContent = "Go to the lessons";
      $("current").append(" ", link);
      $("join-form").hidden = true;
    } catch (err) {
      $("join-error").textContent = err.message;
    }
  });
}

main().catch((err) => {
  $("join-error").textContent = err.message;
});
