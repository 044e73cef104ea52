/* Media types by file extension, for the manifest's "type" field.
 * Informational: verifiers compare content by hash, not by type. The list
 * follows IANA registrations (text/javascript per RFC 9239). */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <patient/manifest.h>

static const struct {
    const char *ext;
    const char *type;
} types[] = {
    /* sorted by extension (ASCII, lower case) for bsearch */
    {"7z", "application/x-7z-compressed"},
    {"aac", "audio/aac"},
    {"apng", "image/apng"},
    {"atom", "application/atom+xml"},
    {"avif", "image/avif"},
    {"bin", "application/octet-stream"},
    {"bmp", "image/bmp"},
    {"bz2", "application/x-bzip2"},
    {"cjs", "text/javascript"},
    {"css", "text/css"},
    {"csv", "text/csv"},
    {"doc", "application/msword"},
    {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
    {"eot", "application/vnd.ms-fontobject"},
    {"epub", "application/epub+zip"},
    {"flac", "audio/flac"},
    {"gif", "image/gif"},
    {"gz", "application/gzip"},
    {"htm", "text/html"},
    {"html", "text/html"},
    {"ico", "image/vnd.microsoft.icon"},
    {"ics", "text/calendar"},
    {"jpeg", "image/jpeg"},
    {"jpg", "image/jpeg"},
    {"js", "text/javascript"},
    {"json", "application/json"},
    {"jsonld", "application/ld+json"},
    {"m4a", "audio/mp4"},
    {"map", "application/json"},
    {"md", "text/markdown"},
    {"mjs", "text/javascript"},
    {"mp3", "audio/mpeg"},
    {"mp4", "video/mp4"},
    {"mpeg", "video/mpeg"},
    {"odt", "application/vnd.oasis.opendocument.text"},
    {"oga", "audio/ogg"},
    {"ogg", "audio/ogg"},
    {"ogv", "video/ogg"},
    {"otf", "font/otf"},
    {"pdf", "application/pdf"},
    {"png", "image/png"},
    {"rss", "application/rss+xml"},
    {"rtf", "application/rtf"},
    {"sig", "application/pgp-signature"},
    {"svg", "image/svg+xml"},
    {"tar", "application/x-tar"},
    {"tif", "image/tiff"},
    {"tiff", "image/tiff"},
    {"ttf", "font/ttf"},
    {"txt", "text/plain"},
    {"wasm", "application/wasm"},
    {"wav", "audio/wav"},
    {"weba", "audio/webm"},
    {"webm", "video/webm"},
    {"webmanifest", "application/manifest+json"},
    {"webp", "image/webp"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"xhtml", "application/xhtml+xml"},
    {"xml", "application/xml"},
    {"xz", "application/x-xz"},
    {"yaml", "application/yaml"},
    {"yml", "application/yaml"},
    {"zip", "application/zip"},
    {"zst", "application/zstd"},
};

static int
cmp_ext(const void *key, const void *elem)
{
    const char *k = key;
    const char *e = *(const char *const *)elem;
    return strcasecmp(k, e);
}

const char *
patient_mediatype(const char *name)
{
    const char *slash, *dot;
    const void *hit;

    if (name == NULL)
        return "application/octet-stream";
    slash = strrchr(name, '/');
    if (slash)
        name = slash + 1;
    dot = strrchr(name, '.');
    /* ".htaccess" has no extension; "a." has an empty one. */
    if (dot == NULL || dot == name || dot[1] == 0)
        return "application/octet-stream";
    hit = bsearch(dot + 1, types, sizeof types / sizeof types[0], sizeof types[0], cmp_ext);
    return hit ? ((const char *const *)hit)[1] : "application/octet-stream";
}
