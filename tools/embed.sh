#!/bin/sh
# embed.sh - writes on stdout the C source of serve_page.h's table from the
# page's files, each as an array of its bytes:
#   tools/embed.sh tools/serve/index.html tools/serve/style.css ... > serve_page.c
# index.html is served at "/", any other file at "/NAME"; the type comes
# from the extension.
set -eu
printf '/* Made by tools/embed.sh from tools/serve/: edit those files, not this. */\n'
printf '#include "serve_page.h"\n\n'
i=0
for f in "$@"; do
    printf 'static const unsigned char file%d[] = {\n' "$i"
    od -An -v -tx1 "$f" | sed -e 's/ *\([0-9a-f][0-9a-f]\)/0x\1,/g' -e 's/^/    /'
    printf '    0x00};\n\n'
    i=$((i + 1))
done
printf 'const serve_file serve_files[] = {\n'
i=0
for f in "$@"; do
    name=${f##*/}
    case $name in
        index.html) url=/ ;;
        *) url=/$name ;;
    esac
    case $name in
        *.html) type='text/html; charset=utf-8' ;;
        *.css) type='text/css; charset=utf-8' ;;
        *.js) type='text/javascript; charset=utf-8' ;;
        *.svg) type='image/svg+xml' ;;
        *.png) type='image/png' ;;
        *) echo "embed.sh: $f: no type for this extension" >&2; exit 1 ;;
    esac
    # The size leaves out the 0 that ends every array (an empty file's).
    printf '    {"%s", "%s", file%d, sizeof file%d - 1},\n' "$url" "$type" "$i" "$i"
    i=$((i + 1))
done
printf '};\nconst size_t serve_nfiles = %d;\n' "$i"
