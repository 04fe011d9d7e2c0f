# Written by pkglayer: ID lookups for the useradd/groupadd wrappers.
IN=/run/pkglayer/in
# has_name FILE NAME: whether an entry NAME exists in FILE (passwd or group format)
has_name() {
    [ -r "$1" ] || return 1
    while IFS=: read -r entry _; do [ "$entry" = "$2" ] && return 0; done <"$1"
    return 1
}
# has_id FILE ID: whether any entry of FILE has ID
has_id() {
    [ -r "$1" ] || return 1
    while IFS=: read -r _ _ entry _; do [ "$entry" = "$2" ] && return 0; done <"$1"
    return 1
}
# known KIND NAME: whether the tree has the user (u) or group (g) NAME
known() {
    if [ "$1" = u ]; then has_name /etc/passwd "$2" || has_name /usr/lib/passwd "$2"
    else has_name /etc/group "$2" || has_name /usr/lib/group "$2"; fi
}
# pick KIND NAME SYSTEM: the ID this machine gave NAME before, else the first free one
pick() {
    while read -r kind name id; do
        [ "$kind" = "$1" ] && [ "$name" = "$2" ] && { echo "$id"; return 0; }
    done <"$IN/ids"
    if [ "$1" = u ]; then files="/etc/passwd /usr/lib/passwd"; else files="/etc/group /usr/lib/group"; fi
    range=regular; [ -n "$3" ] && range=system
    while read -r id; do
        in_use=
        for file in $files; do has_id "$file" "$id" && in_use=1; done
        [ -z "$in_use" ] && { echo "$id"; return 0; }
    done <"$IN/free-$1-$range"
    echo "pkglayer: no free ID left for $2" >&2
    return 1
}
