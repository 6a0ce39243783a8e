#!/usr/bin/env bash
# Installs a real ComfyUI for the tests — v0.8.0 (commit 3cd7b32f) with its pinned frontend
# 1.35.9, CPU only, no models — and prints the directory it is in (bin/comfyui/<version>/, kept
# between runs). Run it with `hack/test-servers.sh` (MSS_TEST_SERVERS includes comfyui), which
# starts it with --multi-user on loopback.
#
# Python: Debian 12's packages (python3-torch 1.13 and friends; this kind reaches no PyPI), plus
# import-only stand-ins for the few packages Debian lacks.
# Sources, first found: $MSS_COMFYUI_DIST (a folder holding the tarballs below and py-stubs-v0.8/),
# ../shared/comfyui next to the checkout (this workplace), else the pinned commit from GitHub and
# the frontend from its PyPI wheel (elsewhere; then the missing Python packages come from pip).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
commit=3cd7b32f1b7e7e90395cefe7d9f9b1f89276d8ce
frontend=1.35.9
dest=$root/bin/comfyui/v0.8.0-${commit:0:8}
if [[ -f $dest/.ready ]]; then
	echo "$dest"
	exit 0
fi

py_packages=(python3-torch python3-torchvision python3-torchaudio python3-aiohttp python3-yaml python3-pil
	python3-scipy python3-tqdm python3-psutil python3-numpy python3-packaging python3-av python3-sqlalchemy
	python3-alembic)
if ! /usr/bin/python3 -c 'import torch, torchvision, torchaudio, aiohttp, yaml, PIL, scipy, tqdm, psutil, av, sqlalchemy, alembic' 2>/dev/null; then
	if [[ $(id -u) -ne 0 ]]; then
		echo "hack/comfyui.sh: missing Python packages for ComfyUI (${py_packages[*]}); run as root or install them" >&2
		exit 1
	fi
	echo "installing Debian packages for ComfyUI (about 220 MB): ${py_packages[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq --no-install-recommends "${py_packages[@]}" >&2
fi

dist=${MSS_COMFYUI_DIST:-}
if [[ -z $dist ]]; then
	# The workplace's copy: next to the checkout, one level up (a clone inside a work folder),
	# or where this workplace keeps it.
	for d in "$root/../shared/comfyui" "$root/../../shared/comfyui" /work/shared/comfyui; do
		if [[ -f $d/ComfyUI-v0.8.0-${commit:0:8}.tar.gz ]]; then
			dist=$d
			break
		fi
	done
fi
tmp=$(mktemp -d "$root/bin/comfyui.XXXXXX" 2>/dev/null || { mkdir -p "$root/bin"; mktemp -d "$root/bin/comfyui.XXXXXX"; })
trap 'rm -rf "$tmp"' EXIT
if [[ -n $dist && -f $dist/ComfyUI-v0.8.0-${commit:0:8}.tar.gz ]]; then
	echo "unpacking ComfyUI and its frontend from $dist" >&2
	tar -xzf "$dist/ComfyUI-v0.8.0-${commit:0:8}.tar.gz" -C "$tmp"
	tar -xzf "$dist/comfyui-frontend-$frontend-dist.tar.gz" -C "$tmp"
	cp -r "$dist/py-stubs-v0.8" "$tmp/py-stubs"
else
	echo "fetching ComfyUI $commit and frontend $frontend (no local copy of the tarballs)" >&2
	git -C "$tmp" init -q ComfyUI
	git -C "$tmp/ComfyUI" fetch -q --depth 1 https://github.com/comfyanonymous/ComfyUI "$commit"
	git -C "$tmp/ComfyUI" checkout -q FETCH_HEAD
	/usr/bin/python3 -m pip download -q --no-deps -d "$tmp/wheel" "comfyui-frontend-package==$frontend"
	/usr/bin/python3 -m zipfile -e "$tmp"/wheel/*.whl "$tmp/wheel/x"
	mv "$tmp/wheel/x/comfyui_frontend_package/static" "$tmp/dist"
	/usr/bin/python3 -m pip install -q --user safetensors einops transformers torchsde tokenizers
	mkdir -p "$tmp/py-stubs"
fi
rm -rf "$dest"
mkdir -p "$(dirname "$dest")"
mv "$tmp" "$dest"
trap - EXIT
touch "$dest/.ready"
echo "$dest"
