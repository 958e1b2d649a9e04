#!/bin/bash
# Makes the Debian 12 base image locally, once, where no registry can be
# pulled from: debootstrap --variant=minbase from the Debian mirror apt
# already uses, imported into podman as localhost/debian:bookworm-slim.
# A no-op (well under a second) when the image is already there.
#
#   tests/image/base-image.sh [IMAGE]      (default localhost/debian:bookworm-slim)
set -euo pipefail
IMAGE=${1:-localhost/debian:bookworm-slim}

if podman image exists "$IMAGE"; then
    exit 0
fi

# The mirror apt uses on this machine (deb822 sources first, then the list).
mirror=$(sed -n 's/^URIs:[[:space:]]*\(http[^ ]*debian\/\?\)[[:space:]]*$/\1/p' \
             /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -v security | head -n1 || true)
if [[ -z $mirror ]]; then
    mirror=$(awk '$1 == "deb" && $2 !~ /security/ { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)
fi
mirror=${mirror:-http://deb.debian.org/debian}

dir=$(mktemp -d /var/tmp/petrel-rootfs.XXXXXX)
trap 'rm -rf "$dir"' EXIT
echo "base-image: debootstrap bookworm from $mirror (about 30 s)" >&2
debootstrap --variant=minbase bookworm "$dir" "$mirror" >"$dir.log" 2>&1 || {
    tail -n 20 "$dir.log" >&2
    rm -f "$dir.log"
    exit 1
}
rm -f "$dir.log"
# What the official -slim image does (debuerreotype): no documentation,
# manual pages or translations now or from later installs, and apt keeps no
# package caches in image layers.
cat >"$dir/etc/dpkg/dpkg.cfg.d/docker-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
CFG
cat >"$dir/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CFG
echo 'Acquire::GzipIndexes "true";' >"$dir/etc/apt/apt.conf.d/docker-gzip-indexes"
find "$dir/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$dir/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$dir"/usr/share/{man,groff,info,lintian,linda,locale}/*
rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb
rm -rf "$dir"/var/log/apt/* "$dir"/var/log/dpkg.log "$dir"/var/log/bootstrap.log
rm -f "$dir/etc/resolv.conf" "$dir/etc/hostname"
tar -C "$dir" -c . | podman import --quiet \
    --change 'CMD ["bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    - "$IMAGE" >/dev/null
echo "base-image: imported $IMAGE" >&2
