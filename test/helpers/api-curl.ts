// Runs the system curl against the API port: the same requests a user copies from the docs.
import { execFile } from "node:child_process";

export interface CurlResult {
  status: number;
  /** "1.1" or "2", as curl negotiated it. */
  httpVersion: string;
  body: string;
}

export interface CurlRequest {
  url: string;
  body: string;
  contentType?: string;
  http2PriorKnowledge?: boolean;
}

// curl prints this line after the body; the marker keeps a body without a final newline apart from it.
const STATUS_MARKER = "\n--curl-status--";

export function curlPost(request: CurlRequest): Promise<CurlResult> {
  const args = [
    "-sS",
    "--max-time",
    "10",
    "-H",
    `Content-Type: ${request.contentType ?? "application/json"}`,
    "--data-binary",
    request.body,
    "-w",
    `${STATUS_MARKER}%{http_code} %{http_version}`,
  ];
  if (request.http2PriorKnowledge === true) args.push("--http2-prior-knowledge");
  args.push(request.url);
  return new Promise((resolve, reject) => {
    execFile("curl", args, { timeout: 15_000, maxBuffer: 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) {
        reject(new Error(`curl failed: ${error.message} ${stderr}`));
        return;
      }
      const at = stdout.lastIndexOf(STATUS_MARKER);
      const [status, httpVersion] = stdout.slice(at + STATUS_MARKER.length).split(" ");
      resolve({ status: Number(status), httpVersion: httpVersion ?? "", body: stdout.slice(0, at) });
    });
  });
}
