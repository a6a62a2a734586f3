import assert from "node:assert/strict";
import { test } from "node:test";
import { mentionMatches, mentionQuery, safeHref, tokenize } from "../../realtime/static/realtime/richtext.js";
import { dayLabel, timeLabel } from "../../realtime/static/realtime/when.js";

const kinds = (tokens) => tokens.map((t) => [t.type, t.text]);

test("http and https URLs become links without the sentence's punctuation", () => {
  const tokens = tokenize("see https://example.com/a?b=1. and (http://x.org/wiki/Foo_(bar)), ok");
  assert.deepEqual(kinds(tokens), [
    ["text", "see "],
    ["link", "https://example.com/a?b=1"],
    ["text", ". and ("],
    ["link", "http://x.org/wiki/Foo_(bar)"],
    ["text", "), ok"],
  ]);
  assert.equal(tokens[1].href, "https://example.com/a?b=1");
});

test("javascript:, data: and other schemes are never links", () => {
  for (const text of ["javascript:alert(1)", "data:text/html,<b>x</b>", "ftp://x.org/", "JaVaScRiPt://x", "xhttps://evil.example"]) {
    assert.deepEqual(kinds(tokenize(text)), [["text", text]], text);
  }
  assert.equal(safeHref("javascript:alert(1)"), null);
  assert.equal(safeHref("https://ok.example/x"), "https://ok.example/x");
});

test("text between backticks is code, and nothing inside it is a link or a mention", () => {
  assert.deepEqual(kinds(tokenize("run `rm -rf https://x.org @alice` now", ["alice"])), [
    ["text", "run "],
    ["code", "rm -rf https://x.org @alice"],
    ["text", " now"],
  ]);
  assert.deepEqual(kinds(tokenize("a lone ` backtick")), [["text", "a lone ` backtick"]]);
  assert.deepEqual(kinds(tokenize("empty `` and\n`split\nlines`")), [["text", "empty `` and\n`split\nlines`"]]);
});

test("only mentions of users that exist are mentions", () => {
  assert.deepEqual(kinds(tokenize("hi @alice and @nobody, @alice.", ["alice"])), [
    ["text", "hi "],
    ["mention", "@alice"],
    ["text", " and @nobody, "],
    ["mention", "@alice"],
    ["text", "."],
  ]);
  assert.deepEqual(kinds(tokenize("mail me@alice.org", ["alice"])), [["text", "mail me@alice.org"]]);
});

test("the text comes back whole apart from the backticks", () => {
  const text = "<img src=x onerror=alert(1)> https://a.example/<b> `<script>` @bob";
  const joined = tokenize(text, ["bob"]).map((t) => t.text).join("");
  assert.equal(joined, text.replace(/`/g, ""));
});

test("the autocomplete sees the @name being typed before the caret", () => {
  assert.deepEqual(mentionQuery("hi @al", 6), { start: 3, query: "al" });
  assert.deepEqual(mentionQuery("@", 1), { start: 0, query: "" });
  assert.equal(mentionQuery("mail a@b", 8), null);
  assert.equal(mentionQuery("hi @al there", 12), null);
  const people = [{ username: "bob" }, { username: "Alice" }, { username: "malia" }, { username: "alfred" }];
  assert.deepEqual(mentionMatches(people, "al").map((p) => p.username), ["alfred", "Alice", "malia"]);
  assert.equal(mentionMatches(people, "").length, 4);
});

test("days are Today, Yesterday or a full date; times carry the date unless today", () => {
  const now = new Date(2026, 5, 15, 12, 0);
  assert.equal(dayLabel(new Date(2026, 5, 15, 0, 5), now), "Today");
  assert.equal(dayLabel(new Date(2026, 5, 14, 23, 59), now), "Yesterday");
  const older = dayLabel(new Date(2026, 5, 10, 9, 0), now);
  assert.match(older, /2026/);
  assert.match(older, /10/);
  assert.doesNotMatch(timeLabel(new Date(2026, 5, 15, 9, 7), now), /2026|Jun/);
  assert.match(timeLabel(new Date(2026, 5, 10, 9, 7), now), /Jun/);
  assert.match(timeLabel(new Date(2025, 0, 3, 9, 7), now), /2025/);
});
