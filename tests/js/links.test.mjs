import assert from "node:assert/strict";
import { test } from "node:test";
import { isLocalPath } from "../../realtime/static/realtime/links.js";

test("paths on the site are local", () => {
  for (const url of ["/", "/rooms/general/", "/rooms/a/?x=1#m-2"]) assert.equal(isLocalPath(url), true, url);
});

test("anything a browser would take to another site is not", () => {
  for (const url of [
    "//evil.example/",
    "/\\evil.example/",
    "/\t/evil.example/",
    "/\n/evil.example",
    "https://evil.example/",
    "javascript:alert(1)",
    "rooms/general/",
    "",
    null,
    42,
  ]) {
    assert.equal(isLocalPath(url), false, String(url));
  }
});
