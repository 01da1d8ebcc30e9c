#!/usr/bin/env bash
# Runs every test: go test ./... with the arguments given (./test.sh -race,
# ./test.sh -run TestBrowser ./dashboard/). The dashboard's browser tests
# drive headless Chromium; when Debian's chromium is missing this installs
# it first (root, or sudo without a password), quietly.
set -euo pipefail
cd "$(dirname "$0")"

if [ ! -x /usr/bin/chromium ]; then
	sudo=""
	if [ "$(id -u)" -ne 0 ]; then
		if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
			sudo="sudo -n"
		else
			echo "test.sh: /usr/bin/chromium is missing and this user cannot install it; the browser tests will be skipped" >&2
		fi
	fi
	if [ "$(id -u)" -eq 0 ] || [ -n "$sudo" ]; then
		echo "test.sh: installing chromium for the dashboard's browser tests" >&2
		export DEBIAN_FRONTEND=noninteractive
		$sudo apt-get update -qq >/dev/null
		$sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
	fi
fi

# The secure OPC UA interop tests run a node-opcua PLC (stations/testdata/opcua),
# pinned by its lockfile.
if command -v npm >/dev/null && [ ! -d stations/testdata/opcua/node_modules ]; then
	echo "test.sh: installing the node-opcua test PLC (npm ci)" >&2
	npm ci --prefix stations/testdata/opcua --no-audit --no-fund --loglevel=error >/dev/null
fi

if [ "$#" -eq 0 ]; then
	set -- ./...
else
	# Arguments without a package pattern test every package.
	pkgs=0
	for a in "$@"; do
		case "$a" in ./* | github.com/*) pkgs=1 ;; esac
	done
	[ "$pkgs" -eq 1 ] || set -- "$@" ./...
fi
exec go test "$@"
