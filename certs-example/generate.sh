#!/usr/bin/env bash
# Regenerates the example certificate set: a development root CA, a WWDR-like intermediate and a
# Pass Type ID certificate with its key. NOT FOR PRODUCTION: an iPhone will refuse passes signed by it.
# Usage: certs-example/generate.sh [OUT_DIR] [PASS_TYPE_ID] [TEAM_ID]
set -euo pipefail
out=${1:-$(dirname "$0")}
pass_type_id=${2:-pass.com.example.tessera}
team_id=${3:-EXAMPLE123}
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cat > "$tmp/ext.cnf" <<CNF
[root]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[intermediate]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[pass]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
# clientAuth: the same certificate authenticates to APNs; emailProtection: `openssl smime -verify` accepts it.
extendedKeyUsage = clientAuth, emailProtection
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF

# Root (10 years) and intermediate (5 years), standing in for Apple Root CA and WWDR G4.
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -keyout "$tmp/root.key" -out "$out/root.pem" \
  -subj "/C=US/O=Tessera Example (NOT FOR PRODUCTION)/OU=Development/CN=Tessera Example Root CA" \
  -extensions root -config <(cat /etc/ssl/openssl.cnf "$tmp/ext.cnf") 2>/dev/null
openssl req -new -newkey rsa:2048 -nodes -keyout "$tmp/wwdr.key" -out "$tmp/wwdr.csr" \
  -subj "/C=US/O=Tessera Example (NOT FOR PRODUCTION)/OU=Development/CN=Tessera Example WWDR-like Intermediate" 2>/dev/null
openssl x509 -req -in "$tmp/wwdr.csr" -CA "$out/root.pem" -CAkey "$tmp/root.key" -CAcreateserial \
  -days 1825 -extfile "$tmp/ext.cnf" -extensions intermediate -out "$out/wwdr.pem" 2>/dev/null

# The pass certificate: like Apple's, the subject carries the pass type identifier as UID and the team
# identifier as OU.
openssl req -new -newkey rsa:2048 -nodes -keyout "$out/pass.key" -out "$tmp/pass.csr" \
  -subj "/UID=${pass_type_id}/CN=Pass Type ID: ${pass_type_id}/OU=${team_id}/O=Tessera Example (NOT FOR PRODUCTION)/C=US" 2>/dev/null
openssl x509 -req -in "$tmp/pass.csr" -CA "$out/wwdr.pem" -CAkey "$tmp/wwdr.key" -CAcreateserial \
  -days 825 -extfile "$tmp/ext.cnf" -extensions pass -out "$out/pass.pem" 2>/dev/null
rm -f "$out"/*.srl
echo "wrote $out/root.pem $out/wwdr.pem $out/pass.pem $out/pass.key (pass type ${pass_type_id}, team ${team_id})"
