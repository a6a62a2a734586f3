// A real WebSocket server on 127.0.0.1 that speaks enough of PROTOCOL.md
// (version 1) to drive realtime.js: welcome, subscribe with offsets and
// replay, publish/ack with id dedupe, ping/pong, presence, closing with
// chosen codes. Tests steer it through its fields and `intercept`.
import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import WebSocket, { WebSocketServer } from "ws";

export { WebSocket };

/**
 * Resolves with what `check()` returns once it is truthy; polls every 5 ms.
 * @template T
 * @param {() => T} check
 * @param {{timeout?: number, message?: string}} [options]
 * @returns {Promise<T>}
 */
export async function waitFor(check, { timeout = 3000, message = "condition" } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${message}`);
    await sleep(5);
  }
}

/** Resolves with the next event of `type` on `target` (with a timeout). */
export function nextEvent(target, type, { timeout = 3000, filter = () => true } = {}) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      target.removeEventListener(type, listener);
      reject(new Error(`timed out waiting for event ${type}`));
    }, timeout);
    function listener(event) {
      if (!filter(event)) return;
      clearTimeout(timer);
      target.removeEventListener(type, listener);
      resolve(event);
    }
    target.addEventListener(type, listener);
  });
}

/** A TCP port on 127.0.0.1 that nothing listens on (connections are refused). */
export async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A TCP server that accepts connections and never answers the handshake. */
export async function silentServer() {
  const sockets = new Set();
  let accepted = 0;
  const server = net.createServer((socket) => {
    accepted += 1;
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `ws://127.0.0.1:${server.address().port}/ws/`,
    accepted: () => accepted,
    sockets,
    async stop() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * @typedef {object} Conn
 * @property {WebSocket} ws
 * @property {number} n          1 for the first connection, 2 for the next, ...
 * @property {any[]} frames     frames received from the client, parsed
 * @property {string} protocol  the subprotocol agreed
 * @property {{code: number, reason: string}|null} closed
 */

export class ProtocolServer {
  /**
   * @param {{heartbeat?: number, answerPings?: boolean, welcome?: boolean}} [options]
   */
  constructor({ heartbeat = 25, answerPings = true, welcome = true } = {}) {
    this.heartbeat = heartbeat;
    this.answerPings = answerPings;
    this.sendWelcome = welcome;
    /** @type {Conn[]} */
    this.connections = [];
    /** @type {Map<string, any>} */
    this.topics = new Map();
    /**
     * Called with (conn, frame) before the default handling; return true when
     * the test handled the frame itself.
     * @type {((conn: Conn, frame: any) => boolean|void) | null}
     */
    this.intercept = null;
    this.port = 0;
  }

  get url() {
    return `ws://127.0.0.1:${this.port}/ws/`;
  }

  /** Every frame received from any client, as [conn, frame] pairs. */
  get frames() {
    return this.connections.flatMap((conn) => conn.frames.map((frame) => [conn, frame]));
  }

  /** Frames of one type received on connection `n` (1-based), or on any. */
  framesOf(type, n = null) {
    return this.frames.filter(([conn, frame]) => frame.type === type && (n === null || conn.n === n)).map(([, f]) => f);
  }

  /** The latest connection. */
  get last() {
    return this.connections[this.connections.length - 1];
  }

  /** Connections not closed yet. */
  get open() {
    return this.connections.filter((conn) => !conn.closed);
  }

  /** Listen on 127.0.0.1 (on `port`, or an ephemeral one). */
  async start(port = 0) {
    this.wss = new WebSocketServer({
      host: "127.0.0.1",
      port,
      handleProtocols: (protocols) => (protocols.has("realtime.v1") ? "realtime.v1" : false),
    });
    await new Promise((resolve, reject) => {
      this.wss.once("listening", resolve);
      this.wss.once("error", reject);
    });
    this.port = this.wss.address().port;
    this.wss.on("connection", (ws, request) => this.#accept(ws, request));
    return this;
  }

  /** Close every connection abruptly and stop listening. */
  async stop() {
    if (!this.wss) return;
    const wss = this.wss;
    this.wss = null;
    for (const client of wss.clients) client.terminate();
    await new Promise((resolve) => wss.close(resolve));
  }

  /**
   * A topic's record, created on first use.
   * @param {string} name
   * @param {{history?: boolean, presence?: boolean, forbidden?: boolean, retainedFrom?: number}} [options]
   */
  topic(name, options = {}) {
    let topic = this.topics.get(name);
    if (!topic) {
      topic = { name, history: true, presence: false, forbidden: false, retainedFrom: 1, events: [], ids: new Map(), subscribers: new Set(), users: [] };
      this.topics.set(name, topic);
    }
    Object.assign(topic, options);
    return topic;
  }

  /** Store an event on `name` (numbered when the topic has history) without sending it. */
  store(name, data, id = null) {
    const topic = this.topic(name);
    const offset = topic.history ? topic.events.length + 1 : null;
    const event = { type: "event", topic: name, offset, ts: new Date().toISOString(), data };
    if (topic.history) topic.events.push(event);
    if (id) topic.ids.set(id, offset);
    return event;
  }

  /** Store and send an event to every subscriber of `name`. */
  publish(name, data, id = null) {
    const event = this.store(name, data, id);
    this.broadcast(name, event);
    return event;
  }

  broadcast(name, frame) {
    for (const conn of this.topic(name).subscribers) this.send(conn, frame);
  }

  /** @param {Conn} conn */
  send(conn, frame) {
    if (conn.ws.readyState === WebSocket.OPEN) conn.ws.send(JSON.stringify(frame));
  }

  /** Close every open connection with `code`. */
  closeAll(code, reason = "") {
    for (const conn of this.open) conn.ws.close(code, reason);
  }

  /** Drop every open connection without a closing handshake (the client sees 1006). */
  terminateAll() {
    for (const conn of this.open) conn.ws.terminate();
  }

  #accept(ws, request) {
    /** @type {Conn} */
    const conn = { ws, n: this.connections.length + 1, frames: [], protocol: ws.protocol, closed: null, path: request.url };
    this.connections.push(conn);
    ws.on("error", () => {});
    ws.on("close", (code, reason) => {
      conn.closed = { code, reason: reason.toString() };
      for (const topic of this.topics.values()) topic.subscribers.delete(conn);
    });
    ws.on("message", (raw, isBinary) => {
      if (isBinary) return;
      let frame;
      try {
        frame = JSON.parse(raw.toString());
      } catch {
        this.send(conn, { type: "error", code: "bad_json", message: "not JSON" });
        return;
      }
      conn.frames.push(frame);
      if (this.intercept && this.intercept(conn, frame)) return;
      this.#handle(conn, frame);
    });
    if (this.sendWelcome) {
      this.send(conn, {
        type: "welcome",
        protocol: 1,
        connection_id: `c${conn.n}`,
        user: null,
        heartbeat: this.heartbeat,
        server_time: new Date().toISOString(),
      });
    }
  }

  #handle(conn, frame) {
    const { ref } = frame;
    switch (frame.type) {
      case "ping":
        if (this.answerPings) this.send(conn, { type: "pong", ref });
        return;
      case "subscribe":
        return this.subscribe(conn, frame);
      case "unsubscribe":
        this.topic(frame.topic).subscribers.delete(conn);
        this.send(conn, { type: "unsubscribed", ref, topic: frame.topic });
        return;
      case "publish":
        return this.acceptPublish(conn, frame);
      default:
        this.send(conn, { type: "error", code: "unknown_type", message: "unknown type", ref });
    }
  }

  /** The protocol's subscribe: `subscribed`, then the replay, then presence. */
  subscribe(conn, frame) {
    const { ref } = frame;
    const topic = this.topic(frame.topic);
    if (topic.forbidden) {
      this.send(conn, { type: "error", code: "forbidden", message: "Forbidden.", ref, topic: topic.name });
      return;
    }
    const latest = topic.history ? topic.events.length : null;
    const reply = { type: "subscribed", ref, topic: topic.name, offset: latest };
    let replay = [];
    if (typeof frame.since === "number" && topic.history) {
      reply.recovered = frame.since >= topic.retainedFrom - 1;
      if (reply.recovered) replay = topic.events.filter((event) => event.offset > frame.since);
    }
    topic.subscribers.add(conn);
    this.send(conn, reply);
    for (const event of replay) this.send(conn, event);
    if (topic.presence) this.send(conn, { type: "presence_state", topic: topic.name, users: topic.users });
  }

  /** The protocol's publish: dedupe by id, store, broadcast, ack. */
  acceptPublish(conn, frame) {
    const { ref, id } = frame;
    const topic = this.topic(frame.topic);
    if (!frame.data || typeof frame.data.text !== "string" || frame.data.text.trim() === "") {
      this.send(conn, { type: "error", code: "invalid", message: "Text is required.", ref, topic: topic.name });
      return;
    }
    if (id && topic.ids.has(id)) {
      this.send(conn, { type: "ack", ref, topic: topic.name, offset: topic.ids.get(id) });
      return;
    }
    const event = this.publish(topic.name, frame.data, id);
    this.send(conn, { type: "ack", ref, topic: topic.name, offset: event.offset });
  }
}
