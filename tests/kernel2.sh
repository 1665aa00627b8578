#!/usr/bin/env bash
# Runs the kernel tests, or any command, on the second kernel (DESIGN §7): Debian 12's
# linux-image-amd64 (6.1 LTS, every module) booted under qemu with virtme-ng. The guest sees
# this machine's files read-only, the checkout read-write, and runs as root.
#
#   tests/kernel2.sh                      the whole integration suite
#   tests/kernel2.sh FILTER [ARGS...]     cargo-test arguments for the integration binary,
#                                         e.g. `tests/kernel2.sh lifecycle::` or `-- --exact X`
#   tests/kernel2.sh -- CMD [ARGS...]     any command, from the project root, with this
#                                         checkout's `nslab` first on PATH, e.g.
#                                         `tests/kernel2.sh -- nslab run --sandbox scripts/tutorial.rhai`
#
# What is missing is installed first (needs root): qemu-system-x86, linux-image-amd64 and
# busybox-static from Debian, virtme-ng from PyPI in a venv ($NSLAB_VNG_VENV, default
# /opt/nslab-vng). Inside the guest NSLAB_SECOND_KERNEL=1 and CI=true are set, so no kernel
# test is skipped and a feature the kernel lacks fails (tests/integration/common.rs).
#
# Environment: NSLAB_KERNEL2_TIMEOUT (seconds for the whole VM run, default 3000),
# NSLAB_KERNEL2_MEMORY (default 4G), NSLAB_KERNEL2_CPUS (default: this machine's, at most 4).
# The exit status is the guest command's; 124 means the time ran out, 125 that the VM did not
# run the command at all.
set -euo pipefail

# Everything runs from a function, read whole before it starts: bash reads a script as it
# goes, and an edit during a 20-minute run would otherwise make it execute garbage.
main() {
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
    cd "$root"

    venv="${NSLAB_VNG_VENV:-/opt/nslab-vng}"
    vng_version="1.42" # pinned: vng's options and guest init change between releases
    timeout_s="${NSLAB_KERNEL2_TIMEOUT:-3000}"
    memory="${NSLAB_KERNEL2_MEMORY:-4G}"
    cpus="${NSLAB_KERNEL2_CPUS:-$(($(nproc) < 4 ? $(nproc) : 4))}"

    say() { printf 'kernel2: %s\n' "$*" >&2; }
    die() {
        say "$*"
        exit 125
    }

    # The newest Debian 6.1 kernel image, or nothing.
    kernel_image() {
        local k
        k="$(ls -1 /boot/vmlinuz-6.1.*-amd64 2>/dev/null | sort -V | tail -n1)"
        printf '%s' "$k"
    }

    install_missing() {
        local need=()
        [ -n "$(kernel_image)" ] || need+=(linux-image-amd64)
        command -v qemu-system-x86_64 >/dev/null 2>&1 || need+=(qemu-system-x86)
        # The distro kernel has virtio and 9p as modules: virtme-ng loads them from an initramfs
        # that runs a statically linked busybox.
        dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' ||
            need+=(busybox-static)
        if ((${#need[@]})); then
            [ "$(id -u)" = 0 ] || die "missing ${need[*]}: run once as root (sudo $0) to install them"
            say "installing ${need[*]}"
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dpkg::Use-Pty=0 "${need[@]}" >&2
        fi
        [ -n "$(kernel_image)" ] ||
            die "linux-image-amd64 installed no /boot/vmlinuz-6.1.*-amd64 (this script expects Debian 12's kernel)"

        if ! "$venv/bin/vng" --version 2>/dev/null | grep -qF "$vng_version"; then
            [ -w "$(dirname "$venv")" ] || die "cannot create $venv: run once as root, or set NSLAB_VNG_VENV"
            say "installing virtme-ng $vng_version in $venv"
            python3 -m venv "$venv" >&2 || {
                [ "$(id -u)" = 0 ] || die "python3 -m venv failed: install python3-venv"
                apt-get update -qq
                DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2
                python3 -m venv "$venv" >&2
            }
            "$venv/bin/pip" install -q "virtme-ng==$vng_version" >&2
        fi
    }

    install_missing
    kernel="$(kernel_image)"
    release="${kernel#/boot/vmlinuz-}"
    [ -r "$kernel" ] || die "$kernel is not readable by $(id -un): run as root"
    [ -d "/lib/modules/$release" ] || die "/lib/modules/$release is missing: reinstall linux-image-$release"

    # Build on the host (the guest has no writable cargo home and TCG is ~10x slower).
    locked=()
    [ -n "${CI:-}" ] && locked=(--locked)
    mode=test
    if [ "${1:-}" = "--" ]; then
        mode=cmd
        shift
        [ $# -gt 0 ] || die "usage: $0 -- CMD [ARGS...]"
        cargo build "${locked[@]}" --bin nslab >&2
        guest_cmd=("$@")
    else
        exe="$(cargo test "${locked[@]}" --test integration --no-run --message-format=json |
            python3 -c 'import json, sys
ms = [json.loads(line) for line in sys.stdin]
print(*[m["executable"] for m in ms if m.get("reason") == "compiler-artifact"
        and m["target"]["name"] == "integration" and m["profile"]["test"]
        and m.get("executable")], sep="\n")')"
        [ -n "$exe" ] && [ -x "$exe" ] || die "cargo did not report the integration test binary"
        guest_cmd=("$exe" "$@")
    fi
    bindir="$(cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/debug"

    # The guest runs a script from the checkout (read-write there) and leaves its status beside
    # it, so a VM that crashed or never ran the command is not mistaken for a pass.
    work="$root/target/kernel2"
    mkdir -p "$work"
    status_file="$work/status"
    rm -f "$status_file"
    {
        echo '#!/bin/bash'
        # See the vng command below for why the checkout arrives at /mnt.
        printf 'mount --bind /mnt %q || exit 125\n' "$root"
        printf 'cd %q || exit 125\n' "$root"
        # The guest's /dev has no static nodes: /dev/net/tun appears once tun is loaded.
        echo 'modprobe -q tun || true'
        printf 'export PATH=%q:"$PATH" NSLAB_SECOND_KERNEL=1 CI=true NO_COLOR=1 \\\n    NSLAB_TEST_SLOWDOWN=10\n' "$bindir"
        echo 'echo "kernel2: running on Linux $(uname -r), $(nproc) CPUs (qemu, TCG)"'
        printf '%q ' "${guest_cmd[@]}"
        echo
        echo 'rc=$?'
        printf 'echo "$rc" > %q\n' "$status_file"
        echo 'exit "$rc"'
    } >"$work/run.sh"
    chmod +x "$work/run.sh"

    say "booting $release under qemu (TCG, $cpus CPUs, $memory), at most ${timeout_s}s"
    start=$SECONDS
    set +e
    # No KVM: /dev/kvm opens here but qemu's KVM mode aborts on an MSR in this nested setup.
    # timeout (not --foreground) signals its whole process group, qemu included.
    # The checkout is writable in the guest at /mnt, then bind-mounted over its own path by
    # run.sh: virtme passes the guest path of an --rwdir on the kernel command line unquoted, so a
    # path with a space would not survive there. vng 1.42 also joins --rwdir into a shell command
    # unquoted, hence the printf %q.
    # The pipe: qemu reopens /proc/self/fd/1 and /proc/self/fd/2 as files with O_TRUNC, so when
    # they are a log file (CI, `> log 2>&1`) the guest's stdout and stderr overwrite each other
    # from offset 0 and leave NUL holes; a pipe has no offset.
    PATH="$venv/bin:$PATH" timeout -k 30 "$timeout_s" vng --run "$kernel" --disable-kvm --user root \
        --memory "$memory" --cpus "$cpus" --rwdir "$(printf '%q' "/mnt=$root")" \
        --exec "$(printf '%q' "$work/run.sh")" </dev/null 2>&1 | cat
    vng_rc=${PIPESTATUS[0]}
    set -e
    elapsed=$((SECONDS - start))
    if [ "$vng_rc" = 124 ] || [ "$vng_rc" = 137 ]; then
        say "the VM run took longer than ${timeout_s}s and was stopped"
        exit 124
    fi
    if [ ! -s "$status_file" ]; then
        die "the VM ended (vng status $vng_rc) without running the command to its end"
    fi
    rc="$(cat "$status_file")"
    say "${mode} finished on $release with status $rc after ${elapsed}s"
    exit "$rc"
}

main "$@"
exit
