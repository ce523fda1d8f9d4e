// Drives Cadenza's MCP server with the official TypeScript SDK, as a desktop agent would.
//
// Usage: node driver.mjs plan.json > results.json
//
// The plan names the transport ("http": a URL; "stdio": the command that serves MCP on
// stdin/stdout) and sessions, one per API key, each a list of tool calls. Every session
// lists the tools first, as clients do, so the SDK checks each result's structured
// content against the tool's output schema. The results say what the SDK handed back,
// or what it threw: the Python test (test_mcp_typescript.py) judges them.

import { readFileSync } from "node:fs";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const plan = JSON.parse(readFileSync(process.argv[2], "utf8"));

function transportFor(key) {
  if (plan.transport === "http") {
    const headers = { Authorization: `Bearer ${key}` };
    return new StreamableHTTPClientTransport(new URL(plan.url), { requestInit: { headers } });
  }
  return new StdioClientTransport({
    command: plan.command,
    args: plan.args,
    env: { ...plan.env, CADENZA_API_KEY: key },
    cwd: plan.cwd,
    stderr: "ignore",
  });
}

async function runSession(session) {
  const client = new Client({ name: "cadenza-typescript-test", version: "1.0.0" });
  await client.connect(transportFor(session.key));
  const listed = await client.listTools();
  const outcome = {
    name: session.name,
    tools: listed.tools.map((tool) => tool.name),
    listedBytes: Buffer.byteLength(JSON.stringify(listed)),
    calls: [],
  };
  for (const call of session.calls) {
    try {
      const result = await client.callTool({ name: call.name, arguments: call.arguments });
      outcome.calls.push({
        id: call.id,
        isError: result.isError === true,
        structured: result.structuredContent ?? null,
        text: result.content?.[0]?.text ?? null,
      });
    } catch (error) {
      outcome.calls.push({ id: call.id, thrown: String(error) });
    }
  }
  await client.close();
  return outcome;
}

const sessions = [];
for (const session of plan.sessions) {
  sessions.push(await runSession(session));
}
process.stdout.write(JSON.stringify({ sdk: plan.sdk, sessions }));
