#!/bin/sh
# mkman.sh - writes the manual page nabla(1) on stdout from the tool's own
# help, so that the two cannot disagree:
#   tools/mkman.sh tools/nabla VERSION > nabla.1
#
# It reads the help as nabla.c's usage() and cli_print_help print it: a
# "usage:" line, paragraphs, then sections "name:" of items "  ITEM  text",
# whose continuation lines are indented further.  `nabla --help`'s
# sections become the page's (its verbs listed in DESCRIPTION, each verb's
# `nabla VERB --help` a subsection of VERBS, with its options).
set -eu
# The help does not depend on them, but a bad value would stop a verb's.
unset NABLA_CPU NABLA_MAX_MEMORY
nabla=$1
version=$2
top=$("$nabla" --help)
verbs=$(printf '%s\n' "$top" | awk '/^verbs:$/ {on = 1; next} /^$/ {on = 0} on && /^  [^ ]/ {print $1}')
[ -n "$verbs" ] || { echo "mkman.sh: $nabla --help lists no verbs" >&2; exit 1; }

# The help on stdin as roff.  part: "head" (NAME to OPTIONS), "tail" (the
# sections after OPTIONS) or "verb" (one verb's subsection).
roff='
function esc(s) {
    gsub(/\\/, "\\e", s)
    gsub(/-/, "\\-", s)
    sub(/^[.\047]/, "\\\\\\&&", s)
    return s
}
# An item: the words starting with "-" and the first in bold, the rest
# (an option'\''s value) in italics.
function tag(s,    n, w, i, out) {
    n = split(s, w, " ")
    for (i = 1; i <= n; i++)
        out = out (i > 1 ? " " : "") (i == 1 || w[i] ~ /^-/ ? "\\fB" : "\\fI") esc(w[i]) "\\fR"
    return out
}
function end_block() {
    if (pre) print ".fi\n.RE"
    pre = inlist = 0
}
# An item "  ITEM  text" of a list; the verbs'\'' names fit the indent.
function item(s,    tp) {
    tp = section == "verbs" ? ".TP 12\n" : ".TP\n"
    if (match(s, /  +/)) {
        print tp tag(substr(s, 1, RSTART - 1))
        print esc(substr(s, RSTART + RLENGTH))
    } else {
        print tp tag(s)
    }
    inlist = 1
}
# Paragraph text.  Lines indented by two spaces are a list when the first
# is an item, else shown as they are (an example, a line to paste).
function text(line) {
    if (line == "") {
        end_block()
        para = 1
        return
    }
    if (inlist && line ~ /^   /) {
        sub(/^ +/, "", line)
        print esc(line)
        return
    }
    if (line ~ /^  [^ ]/) {
        line = substr(line, 3)
        if (!pre && (inlist || line ~ /^[^ ]+  /)) {
            if (!inlist) print ".PP"
            item(line)
            return
        }
        if (!pre) print ".PP\n.RS 4\n.nf"
        pre = 1
        print esc(line)
        return
    }
    if (pre || inlist || para) {
        end_block()
        print ".PP"
    }
    para = 0
    print esc(line)
}
function heading(name) {
    end_block()
    if (part == "verb") print ".PP\n" toupper(substr(name, 1, 1)) substr(name, 2) ":"
    else if (name == "verbs") print ".PP"
    else print ".SH " toupper(name)
}
BEGIN { section = "" }
NR == 1 && /^usage: / {
    sub(/^usage: /, "")
    if (part == "verb") {
        verb = $2
        print ".SS " verb
        print "\\fBnabla " esc(verb) "\\fR " esc(substr($0, length("nabla " verb) + 2))
        para = 1
    } else if (part == "head") {
        usage = esc($0)
    }
    next
}
/^       nabla / && section == "" {
    if (part == "head") { sub(/^ +/, ""); usage = usage "\n.br\n" esc($0) }
    next
}
/^[a-z][a-z ]*:$/ {
    section = substr($0, 1, length($0) - 1)
    show = part == "verb" || (part == "head" ? section == "verbs" || section == "options" : section != "verbs" && section != "options")
    if (show) heading(section)
    next
}
# The head: NAME is the first sentence of the first paragraph.
section == "" && part == "head" && !described {
    if ($0 != "") { first[++nfirst] = $0; next }
    if (!nfirst) next
    name = first[1]
    for (i = 2; i <= nfirst; i++) name = name " " first[i]
    sub(/\.( .*)?$/, "", name)
    print ".SH NAME\nnabla \\- " esc(tolower(substr(name, 1, 1)) substr(name, 2))
    print ".SH SYNOPSIS\n" usage
    print ".SH DESCRIPTION"
    for (i = 1; i <= nfirst; i++) text(first[i])
    described = 1
}
section == "" {
    if (part == "verb" || part == "head") text($0)
    next
}
!show { next }
# A list section: the verbs, the options, the environment...
/^  [^ ]/ {
    item(substr($0, 3))
    next
}
/^   / { sub(/^ +/, ""); print esc($0); next }
END { end_block() }
'

printf '.TH NABLA 1 "" "nabla %s" "User Commands"\n' "$version"
printf '.\\" Made by tools/mkman.sh from nabla --help: edit the help, not this.\n'
# Neither hyphenated nor justified: options and paths stay whole.
printf '.nh\n.ad l\n'
printf '%s\n' "$top" | awk -v part=head "$roff"
printf '.SH VERBS\n'
for v in $verbs; do
    "$nabla" "$v" --help | awk -v part=verb "$roff"
done
printf '%s\n' "$top" | awk -v part=tail "$roff"
