#!/bin/bash
# Kissbooth appliance configuration, shared by the image builds (image-build/build-x86-image,
# image-build/jetson/*) and by the first-boot unit on the device. Every function takes the root
# folder it works on as its first argument ("" or "/" on the running device), so the same code
# configures an image being built and can be checked on a temporary folder.
#
# Sourced, not run: `. /usr/lib/kissbooth/appliance.sh`.

# The data partition: label, mount point, and what lives on it (bind-mounted over the read-only
# root). The booth's data, its configuration, and the Wi-Fi profiles are written at run time.
KB_DATA_LABEL=kissbooth-data
KB_DATA_MOUNT=/data
KB_HOTSPOT_PROFILE=/etc/NetworkManager/system-connections/kissbooth-hotspot.nmconnection

kb_die() { echo "kissbooth-appliance: $*" >&2; return 1; }

# kb_valid_psk PSK: WPA2 personal passphrase, 8 to 63 printable ASCII characters.
kb_valid_psk() {
    local p=$1
    local LC_ALL=C
    [ "${#p}" -ge 8 ] && [ "${#p}" -le 63 ] || return 1
    case "$p" in *[![:print:]]*) return 1 ;; esac
    return 0
}

# kb_valid_ssid SSID: 1 to 32 bytes, printable, no leading/trailing space (keyfile-safe).
kb_valid_ssid() {
    local s=$1
    local n
    n=$(printf '%s' "$s" | LC_ALL=C wc -c)
    [ "$n" -ge 1 ] && [ "$n" -le 32 ] || return 1
    case "$s" in " "* | *" " | *[[:cntrl:]]* | *";"*) return 1 ;; esac
    return 0
}

# kb_random_psk: a 12-character password without look-alike characters (read off a screen).
kb_random_psk() {
    local alphabet=abcdefghjkmnpqrstuvwxyzACDEFGHJKLMNPQRTUVWXY346789
    local out="" b
    # od prints one decimal byte per line; 250 is the largest multiple of 50 below 256, so
    # rejecting bytes >= 250 keeps every character equally likely.
    while [ "${#out}" -lt 12 ]; do
        for b in $(od -An -v -tu1 -N32 /dev/urandom); do
            [ "$b" -lt 250 ] || continue
            out+=${alphabet:$((b % ${#alphabet})):1}
            [ "${#out}" -lt 12 ] || break
        done
    done
    printf '%s\n' "$out"
}

# kb_write_hotspot ROOT SSID PSK [TEMPLATE]: the guests' Wi-Fi access point as a NetworkManager
# keyfile (mode ap, shared IPv4, WPA2-PSK), root-only 0600 as NetworkManager requires.
kb_write_hotspot() {
    local root=${1%/} ssid=$2 psk=$3
    local template=${4:-$root/usr/share/kissbooth/kissbooth-hotspot.nmconnection.in}
    kb_valid_ssid "$ssid" || kb_die "invalid Wi-Fi name (1-32 characters, no ';'): '$ssid'" || return 1
    kb_valid_psk "$psk" || kb_die "invalid Wi-Fi password: WPA2 needs 8 to 63 printable ASCII characters" || return 1
    [ -f "$template" ] || kb_die "hotspot template $template is missing" || return 1
    local dest=$root$KB_HOTSPOT_PROFILE
    local dir tmp line
    dir=$(dirname "$dest")
    mkdir -p "$dir"
    chmod 0700 "$dir"
    tmp=$(mktemp "$dir/.kissbooth-hotspot.XXXXXX")
    # Keyfile values escape the backslash (GLib key files); plain substitution, no sed: the
    # values may hold any character sed treats specially.
    local bs="\\" bs2="\\\\"
    ssid=${ssid//"$bs"/"$bs2"}
    psk=${psk//"$bs"/"$bs2"}
    while IFS= read -r line || [ -n "$line" ]; do
        # Quoted replacements: bash 5.2 would otherwise read "&" in them as the match.
        line=${line//@SSID@/"$ssid"}
        line=${line//@PSK@/"$psk"}
        printf '%s\n' "$line"
    done <"$template" >"$tmp"
    chmod 0600 "$tmp"
    sync "$tmp" 2>/dev/null || true
    mv -f "$tmp" "$dest"
}

# kb_set_wifi_config CONF SSID PSK: the daemon's [wifi] section (the guests' Wi-Fi QR code)
# names the same network. Other sections and comments are kept.
kb_set_wifi_config() {
    local conf=$1 ssid=$2 psk=$3
    [ -f "$conf" ] || kb_die "$conf is missing" || return 1
    local tmp esc_ssid esc_psk
    # TOML basic strings: escape backslash and quote.
    local bs="\\" bs2="\\\\" q='"' bq="\\\""
    esc_ssid=${ssid//"$bs"/"$bs2"}; esc_ssid=${esc_ssid//"$q"/"$bq"}
    esc_psk=${psk//"$bs"/"$bs2"}; esc_psk=${esc_psk//"$q"/"$bq"}
    tmp=$(mktemp "$conf.XXXXXX")
    # Values through the environment: awk -v would interpret their backslashes.
    KB_SSID=$esc_ssid KB_PSK=$esc_psk awk '
        BEGIN { ssid = ENVIRON["KB_SSID"]; psk = ENVIRON["KB_PSK"] }
        function emit() {
            print "ssid = \"" ssid "\""; print "password = \"" psk "\""; print "security = \"WPA\""
        }
        /^\[/ { inwifi = ($0 == "[wifi]"); print; if (inwifi && !seen) emit(); seen = seen || inwifi; next }
        inwifi && /^#?[[:space:]]*(ssid|password|security)[[:space:]]*=/ { next }
        { print }
        END { if (!seen) { print ""; print "[wifi]"; emit() } }
    ' "$conf" >"$tmp"
    chmod --reference="$conf" "$tmp" 2>/dev/null || chmod 0644 "$tmp"
    chown --reference="$conf" "$tmp" 2>/dev/null || true
    mv -f "$tmp" "$conf"
}

# kb_readonly_root ROOT ROOT_SPEC [EXTRA_BINDS...]: an fstab for a read-only root with the data
# partition (label kissbooth-data) on /data, the booth's data and configuration bind-mounted
# from it, logs and temporary files in RAM, and a volatile journal.
kb_readonly_root() {
    local root=${1%/} rootspec=$2
    shift 2
    local binds=(/var/lib/kissbooth /etc/kissbooth "$@")
    local b
    mkdir -p "$root/etc/systemd/journald.conf.d" "$root$KB_DATA_MOUNT"
    {
        echo "# Kissbooth appliance: read-only root, writable data partition (image-build/README.md)"
        echo "$rootspec / ext4 ro,noatime,errors=remount-ro 0 1"
        # nofail: a booth whose data partition is missing still boots, and doctor says why.
        echo "LABEL=$KB_DATA_LABEL $KB_DATA_MOUNT ext4 defaults,noatime,nosuid,nodev,nofail,x-systemd.device-timeout=120s 0 2"
        for b in "${binds[@]}"; do
            mkdir -p "$root$b"
            echo "$KB_DATA_MOUNT${b} $b none bind,nofail,x-systemd.requires-mounts-for=$KB_DATA_MOUNT 0 0"
        done
        echo "tmpfs /tmp tmpfs nosuid,nodev,mode=1777,size=25% 0 0"
        echo "tmpfs /var/tmp tmpfs nosuid,nodev,mode=1777,size=10% 0 0"
        echo "tmpfs /var/log tmpfs nosuid,nodev,mode=0755,size=64m 0 0"
    } >"$root/etc/fstab"
    cat >"$root/etc/systemd/journald.conf.d/kissbooth-volatile.conf" <<'CONF'
# Read-only root: the journal lives in RAM (/run/log/journal).
[Journal]
Storage=volatile
RuntimeMaxUse=64M
CONF
    # No machine-id baked into the image: systemd generates one per device at boot (an empty
    # file means "not yet initialised"; on a read-only root it stays in RAM).
    : >"$root/etc/machine-id"
    # State folders systemd's units create at start (StateDirectory=) cannot be created on a
    # read-only root: they must exist in the image (logind fails to start otherwise).
    mkdir -p "$root/var/lib/systemd/linger"
}

# kb_seed_data ROOT DATADIR [EXTRA_BINDS...]: move what the bind mounts cover from ROOT into
# DATADIR (the data partition's content), keeping owners and modes. The root keeps an empty
# mount point, and /etc/kissbooth also keeps its factory copy in /usr/share/kissbooth/factory.
kb_seed_data() {
    local root=${1%/} data=${2%/}
    shift 2
    local b
    mkdir -p "$root/usr/share/kissbooth/factory"
    cp -a "$root/etc/kissbooth" "$root/usr/share/kissbooth/factory/" 2>/dev/null || true
    for b in /var/lib/kissbooth /etc/kissbooth "$@"; do
        mkdir -p "$data$(dirname "$b")"
        if [ -d "$root$b" ]; then
            cp -a "$root$b" "$data$b"
            find "$root$b" -mindepth 1 -delete
        else
            mkdir -p "$data$b"
        fi
    done
}

# kb_firstboot ROOT: the device's own settings, once (marker in the data folder):
# - a device name "kissbooth-XXXXXX" (from the machine id), also the hostname and Wi-Fi name;
# - the guests' Wi-Fi: the password from the [wifi] section when one is set there, else a
#   random one, written to the NetworkManager profile and to [wifi] (shown on the admin page);
# The admin password is not set here: the daemon asks for it on the kiosk at first use.
# Every boot: applies the hostname (the root is read-only, so /etc/hostname stays generic).
kb_firstboot() {
    local root=${1%/}
    local data=$root/var/lib/kissbooth
    local conf=$root/etc/kissbooth/kissbooth.toml
    local name ssid psk mid
    [ -d "$data" ] || kb_die "$data is missing (is the data partition mounted?)" || return 1
    if [ ! -f "$data/.firstboot-done" ]; then
        mid=$(tr -dc '0-9a-f' <"$root/etc/machine-id" 2>/dev/null | head -c 6 || true)
        [ -n "$mid" ] || mid=$(od -An -tx1 -N3 /dev/urandom | tr -d ' \n')
        name=kissbooth-$mid
        printf '%s\n' "$name" >"$data/device-name"
        if [ -d "$root/etc/NetworkManager" ] && [ -f "$root/usr/share/kissbooth/kissbooth-hotspot.nmconnection.in" ]; then
            ssid=$(kb_conf_get "$conf" wifi ssid)
            psk=$(kb_conf_get "$conf" wifi password)
            [ -n "$ssid" ] || ssid=$name
            [ -n "$psk" ] || psk=$(kb_random_psk)
            kb_write_hotspot "$root" "$ssid" "$psk" || return 1
            kb_set_wifi_config "$conf" "$ssid" "$psk" || return 1
            # The file now holds a password: readable by root and the daemon only.
            if [ -z "$root" ] && getent group kissbooth >/dev/null; then
                chgrp kissbooth "$conf" && chmod 0640 "$conf"
            fi
            echo "kissbooth-firstboot: guest Wi-Fi '$ssid' written ($KB_HOTSPOT_PROFILE)"
        else
            echo "kissbooth-firstboot: no NetworkManager: no guest Wi-Fi profile"
        fi
        : >"$data/.firstboot-done"
        echo "kissbooth-firstboot: device name $name"
    fi
    name=$(cat "$data/device-name")
    if [ -z "$root" ] && [ "$(hostname)" != "$name" ]; then
        hostname "$name" || true
    fi
}

# kb_conf_get CONF SECTION KEY: an uncommented string value from a TOML file ("" when unset).
kb_conf_get() {
    [ -f "$1" ] || return 0
    KB_SECT="[$2]" KB_KEY=$3 awk '
        BEGIN { sect = ENVIRON["KB_SECT"]; key = ENVIRON["KB_KEY"] }
        /^\[/ { insect = ($0 == sect); next }
        insect && $0 ~ "^[[:space:]]*" key "[[:space:]]*=" {
            v = $0; sub(/^[^=]*=[[:space:]]*"/, "", v); sub(/"[[:space:]]*$/, "", v)
            # TOML basic string escapes: a backslash takes the next character as it is.
            out = ""
            for (i = 1; i <= length(v); i++) {
                c = substr(v, i, 1)
                if (c == "\\" && i < length(v)) { i++; c = substr(v, i, 1) }
                out = out c
            }
            print out; exit
        }' "$1"
}
