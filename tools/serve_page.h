/*
 * serve_page.h - the files of nabla serve's page (tools/serve/), compiled
 * into the tool by tools/embed.sh, so that a request never reaches the file
 * system and the page cannot go missing from an install.
 */
#ifndef NABLA_SERVE_PAGE_H
#define NABLA_SERVE_PAGE_H

#include <stddef.h>

typedef struct serve_file {
    const char *url;  /* "/" for index.html, else "/NAME" */
    const char *type; /* its Content-Type */
    const unsigned char *data;
    size_t size;
} serve_file;

extern const serve_file serve_files[];
extern const size_t serve_nfiles;

#endif
