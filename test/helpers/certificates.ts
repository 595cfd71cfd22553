// Throw-away certificates for TLS tests, made with the openssl command line: a CA, a server certificate for
// 127.0.0.1 and client certificates with a given common name, all signed by the CA and valid for a day.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

export interface TestCertificates {
  /** PEM file paths. */
  caFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  ca: Buffer;
  /** A client certificate and key (PEM) with this common name, signed by the CA. */
  client(commonName: string): { cert: Buffer; key: Buffer };
}

const openssl = (cwd: string, ...args: string[]): void => void execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
const KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];

/** Signs a new key's certificate for `subject` with the CA in `dir`; `extensions` are its X.509 v3 extensions (openssl -extfile). */
function issue(dir: string, name: string, commonName: string, extensions: string): void {
  openssl(dir, "req", ...KEY, "-subj", `/CN=${commonName}`, "-keyout", `${name}.key`, "-out", `${name}.csr`);
  writeFileSync(path.join(dir, `${name}.ext`), extensions);
  openssl(dir, "x509", "-req", "-in", `${name}.csr`, "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1", "-extfile", `${name}.ext`, "-out", `${name}.pem`);
}

export function makeCertificates(dir: string, caName = "plugin-bridge test CA"): TestCertificates {
  openssl(dir, "req", "-x509", ...KEY, "-days", "1", "-subj", `/CN=${caName}`, "-keyout", "ca.key", "-out", "ca.pem");
  issue(dir, "server", "127.0.0.1", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
  return {
    caFile: path.join(dir, "ca.pem"),
    serverCertFile: path.join(dir, "server.pem"),
    serverKeyFile: path.join(dir, "server.key"),
    ca: readFileSync(path.join(dir, "ca.pem")),
    client(commonName) {
      const name = `client-${commonName.replace(/[^A-Za-z0-9_-]/g, "_")}`;
      issue(dir, name, commonName, "extendedKeyUsage=clientAuth\n");
      return { cert: readFileSync(path.join(dir, `${name}.pem`)), key: readFileSync(path.join(dir, `${name}.key`)) };
    },
  };
}
