/*
 * kbuild plugin ABI: the whole contract between the kbuild host and a distro plugin.
 *
 * A plugin is a shared object named libkbuild-<name>.so that exports exactly one symbol,
 * kbuild_plugin_entry, returning a pointer to a static kb_plugin_api table. The table starts
 * with its own size and ABI version; fields are only ever appended, so a host reads a table
 * from an older plugin by copying struct_size bytes into a zeroed table (newer hooks read as
 * NULL, which means "not supported").
 *
 * The host accepts a plugin when abi_major == KBUILD_PLUGIN_ABI_MAJOR and
 * abi_minor <= KBUILD_PLUGIN_ABI_MINOR; every other plugin is refused with one line naming
 * the file and the reason.
 *
 * Structured data crosses as UTF-8 JSON objects that carry a "schema" number
 * (KBUILD_PLUGIN_SCHEMA). Every string a hook returns stays valid until the next call on the
 * same plugin instance; the host copies what it keeps. The host never calls one instance from
 * two threads at once; it creates one instance per worker thread when it works in parallel.
 *
 * Plugins do no network I/O except through the host services below. They may read the files
 * the host hands them (downloads, unpacked kernel trees) and write files only inside their own
 * cache_dir() (e.g. what they derived from a repository index, keyed by its sha256).
 *
 * C++ authors do not use this header directly: see kbuild/plugin.hpp.
 */
#ifndef KBUILD_PLUGIN_API_H
#define KBUILD_PLUGIN_API_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 1.0: the core hooks. 1.1: optional hook describe(). 1.2: a release may name its target
 * ("ubuntu-aws") and variant, a release list may carry errors (fields older hosts and plugins
 * leave out). 1.3: host service extract_image(); a release's "release" may be left empty when
 * only its unpacked tree can tell it (the host then reads it there). 1.4: host service verify()
 * (OpenPGP signatures and rpm package signatures); a package may carry "sha512" (checked by
 * fetch like "sha256"). 1.5: optional hook order_releases() (the distro's version order, newest
 * first); describe() may list the targets the plugin serves ("targets"); get_kernel_dir() may
 * say its tree is "self_contained" (builds where it lies: a kernel bundle's). 1.6: describe()
 * may name each distro's default keyrings ("keyrings"). 1.7: a release may be a kernel shipped as
 * source: its "config" (a package) is set, its packages are the source, and the host prepares
 * the tree with the config in the builder of the config's compiler. 1.8: crawl and batch_packages
 * requests carry "host_arch", the build host's architecture as dpkg names it ("amd64"): when it
 * is not "arch" the build cross-compiles, and packages of programs the build runs (Debian's
 * linux-kbuild-*) are taken of host_arch. */
#define KBUILD_PLUGIN_ABI_MAJOR 1
#define KBUILD_PLUGIN_ABI_MINOR 8

/* Version of the JSON documents exchanged through hooks and services. */
#define KBUILD_PLUGIN_SCHEMA 1

/* The one symbol a plugin exports. */
#define KBUILD_PLUGIN_ENTRY_SYMBOL "kbuild_plugin_entry"

typedef enum kb_status {
    KB_OK = 0,
    KB_ERROR = 1,        /* failed; last_error() (or the service's out string) says why */
    KB_NOT_SUPPORTED = 2 /* this plugin or host does not offer the operation */
} kb_status;

typedef enum kb_log_level { KB_LOG_DEBUG = 0, KB_LOG_INFO = 1, KB_LOG_WARN = 2, KB_LOG_ERROR = 3 } kb_log_level;

/* Opaque plugin instance, made by create() and ended by destroy(). */
typedef struct kb_plugin kb_plugin;

/*
 * Services the host lends a plugin, handed to create(). Append-only like kb_plugin_api: a
 * plugin checks struct_size (or a NULL pointer) before using a service newer than it knows.
 *
 * Every service that returns a string writes it to *out: on KB_OK the result, on KB_ERROR a
 * one-line message naming the thing and the cause. That string stays valid until the next
 * service call from the same thread.
 */
typedef struct kb_host_services {
    uint32_t struct_size;
    uint32_t reserved;
    /* Passed back as the first argument of every service. */
    void* host;

    /*
     * log: write one line to kbuild's log, prefixed with the plugin's name.
     * Required: yes (always present).
     */
    void (*log)(void* host, kb_log_level level, const char* message);

    /*
     * fetch: download a file into the host's cache (checksums, retries, proxy, progress).
     * request_json: {"schema":1, "url":"...", "sha256":"<hex, optional>", "size":<bytes, optional>,
     *                "sha512":"<hex, optional, ABI 1.4>"}
     * *out on KB_OK: {"schema":1, "path":"<local file>", "sha256":"<hex>", "size":<bytes>}.
     * The file is host-owned and read-only to the plugin.
     * Required: no (NULL when the host offers no downloads).
     */
    kb_status (*fetch)(void* host, const char* request_json, const char** out);

    /*
     * extract: unpack an archive (.deb, .rpm, .tar.*) into a directory, refusing entries that
     * would land outside it.
     * request_json: {"schema":1, "archive":"<path>", "dest":"<dir>",
     *                "member":"data"|"control" (.deb only, default "data")}
     * *out on KB_OK: {"schema":1, "dest":"<dir>", "entries":<count>}.
     * Required: no (NULL when the host offers no extraction).
     */
    kb_status (*extract)(void* host, const char* request_json, const char** out);

    /*
     * cache_dir: a directory private to this plugin, kept between runs: the one place it may
     * write files itself, and where it may ask extract() to write.
     * Required: yes (always present).
     */
    kb_status (*cache_dir)(void* host, const char** out);

    /* ---- ABI 1.3 ---- */

    /*
     * extract_image: copy subtrees out of a disk image's file system, read in process (no loop
     * device, no mount, no decompressed copy on disk). The image is raw or bzip2-compressed and
     * holds a GPT, an MBR or a bare file system; the first ext2/3/4 file system is read.
     * request_json: {"schema":1, "image":"<path>", "dest":"<dir>",
     *                "paths":["usr/lib/modules/STAR/build", ...]}
     *   paths are relative to the file system's root; a component may be an fnmatch glob (STAR
     *   above stands for "*"). Symlinks on the way are followed inside the image and re-created
     *   under dest; one leading above the image's root is refused.
     * *out on KB_OK: {"schema":1, "dest":"<dir>", "entries":<count>,
     *                 "matched":["usr/lib/modules/6.1.76-flatcar/build"], "where":"GPT partition 1"}
     *   A path matching nothing is left out of "matched", not an error.
     * Required: no (NULL, or a table too small to hold it, when the host is older than 1.3).
     */
    kb_status (*extract_image)(void* host, const char* request_json, const char** out);

    /* ---- ABI 1.4 ---- */

    /*
     * verify: check a downloaded file's signature against the keyrings the host trusts for the
     * distro being served and the mirror the file came from. Nothing in a repository's signed
     * metadata, and no package, may be used before this answers KB_OK.
     * request_json: {"schema":1, "file":"<path fetch gave>", "url":"<where it came from>",
     *                "kind":"openpgp"|"rpm" (default "openpgp"),
     *                "signature":"<path of a detached signature, or empty>",
     *                "inline":true|false (the file is clearsigned: an InRelease),
     *                "required":true|false (false: with no key configured for this source the
     *                                       file is used unverified, as rpm repositories are),
     *                "signature_optional":true|false (default false; true: with a key
     *                                       configured, a detached signature the source does
     *                                       not publish leaves the file unverified instead of
     *                                       refused: an rpm repository's repomd.xml, whose
     *                                       packages carry their own signatures),
     *                "package":"<URL or path of the one package the file vouches for, or
     *                           empty>" (an unverified file is recorded against that package's
     *                           target alone; empty: against every target of the run)}
     *   kind "openpgp": the file's OpenPGP signature, inline or detached, checked by gpgv.
     *   kind "rpm": the file is an rpm package (a download, or a package file the host handed
     *   to this hook) whose own header signature rpmkeys --checksig checks against the same
     *   keyrings; "signature", "inline" and "signature_optional" are not read. An unsigned
     *   package is refused when a key is configured.
     * *out on KB_OK: {"schema":1, "path":"<the signed content: a clearsigned file's text, else
     *                                     the file itself>",
     *                 "signed_by":"<fingerprint (openpgp) or key ID (rpm) of the signing key>",
     *                 "unverified":"<why it was not checked: a mirror the user marked insecure,
     *                                no key configured, no signature published; empty when
     *                                signed_by is set>"}
     * On KB_ERROR *out names the URL and the cause: "<url>: signature by unknown key 0x...",
     * "<url>: rpm signature by unknown key ...", "<url>: not signed".
     * Required: no (NULL, or a table too small to hold it, when the host is older than 1.4; a
     * plugin must then refuse signed sources rather than use them unchecked).
     */
    kb_status (*verify)(void* host, const char* request_json, const char** out);
} kb_host_services;

/*
 * The table a plugin exports. Documents in and out are JSON objects with "schema":1.
 *
 * A release document (what crawl and batch_packages return, what unpack receives):
 *   {"schema":1, "releases":[{"release":"6.1.0-18-amd64", "kernelversion":"1 SMP ... (opt)",
 *     "distro":"debian", "arch":"amd64",
 *     "packages":[{"name":"linux-headers-6.1.0-18-amd64", "url":"https://...", "path":"/...",
 *                  "sha256":"...", "size":123}],
 *     "unavailable":"<why, when a needed package is missing>"}]}
 */
typedef struct kb_plugin_api {
    /* sizeof(kb_plugin_api) as the plugin was compiled. */
    uint32_t struct_size;
    uint32_t abi_major;
    uint32_t abi_minor;
    uint32_t reserved;

    /* Metadata. name must equal the file's <name> in libkbuild-<name>.so. */
    const char* name;
    const char* version;
    /* NULL-terminated list of distro names served, e.g. {"centos", "fedora", NULL}. */
    const char* const* distros;
    /* Builder image family the plugin prefers ("debian", "centos", ...); the host decides. */
    const char* builder_family;

    /*
     * create: make an instance. config_json: {"schema":1, ...plugin options...}.
     * Returns NULL on failure (the host then reports that create failed).
     * Required: yes.
     */
    kb_plugin* (*create)(const kb_host_services* host, const char* config_json);

    /* destroy: end an instance made by create. Required: yes. */
    void (*destroy)(kb_plugin* plugin);

    /*
     * last_error: why the last hook on this instance returned KB_ERROR. Never NULL.
     * Lives until the next call on the instance. Required: yes.
     */
    const char* (*last_error)(kb_plugin* plugin);

    /*
     * crawl: read repository metadata (through host fetch) and list the kernel releases found.
     * request_json: {"schema":1, "distro":"...", "arch":"amd64", "mirrors":["..."],
     *                "apt_mirrors":["<the host's apt sources>"], "options":{"key":"value"},
     *                "host_arch":"amd64" (ABI 1.8)}
     * *out: a release document with package URLs, sha256 and size.
     * Required: no (a plugin may serve local packages only).
     */
    kb_status (*crawl)(kb_plugin* plugin, const char* request_json, const char** out);

    /*
     * batch_packages: group package files (local paths, or URLs/names when names_only) into
     * kernel releases.
     * request_json: {"schema":1, "distro":"...", "arch":"amd64", "files":["..."],
     *                "names_only":false, "options":{}, "host_arch":"amd64" (ABI 1.8)}
     * *out: a release document; files that belong to no release are listed under
     *       "unclaimed":[{"file":"...", "reason":"..."}].
     * Required: yes.
     */
    kb_status (*batch_packages)(kb_plugin* plugin, const char* request_json, const char** out);

    /*
     * unpack: turn one release's downloaded packages into a root directory, through host
     * extract.
     * request_json: {"schema":1, "release":{...one release, packages with "path"...},
     *                "dest":"<empty dir the host made>"}
     * *out: {"schema":1, "root":"<dir>"}.
     * Required: yes.
     */
    kb_status (*unpack)(kb_plugin* plugin, const char* request_json, const char** out);

    /*
     * get_kernel_dir: the kernel build directory (the one holding the top Makefile and
     * .config) inside an unpacked root.
     * request_json: {"schema":1, "release":"...", "root":"<dir>"}
     * *out: {"schema":1, "kernel_dir":"<dir>",
     *        "self_contained":true|false (ABI 1.5, optional, default false: the tree has no
     *                         absolute paths into itself, so the host builds it where it lies,
     *                         mounted whole, instead of laying its usr/src and usr/lib over the
     *                         builder's; a kernel bundle's tree)}.
     * Required: yes.
     */
    kb_status (*get_kernel_dir)(kb_plugin* plugin, const char* request_json, const char** out);

    /*
     * hash_config: identify the kernel configuration.
     * request_json: {"schema":1, "release":"...", "root":"<dir>", "kernel_dir":"<dir>"}
     * *out: {"schema":1, "config":"<path of .config>", "md5":"<hex>"}.
     * Required: yes.
     */
    kb_status (*hash_config)(kb_plugin* plugin, const char* request_json, const char** out);

    /* ---- ABI 1.1 ---- */

    /*
     * describe: the options the plugin reads from "options" in its requests, so the host can
     * show them in help and refuse unknown ones.
     * *out: {"schema":1, "options":[{"name":"suites", "help":"...", "default":"..."}],
     *        "targets":[{"name":"ubuntu-<flavour>", "distro":"ubuntu"}, ...],
     *        "keyrings":{"ubuntu":["/usr/share/keyrings/ubuntu-archive-keyring.gpg"]}}
     *   targets (ABI 1.5, optional): the driverkit-style targets (a release's "target") the
     *   plugin serves, each with the distro whose crawl lists it. A name may hold one
     *   placeholder "<word>", standing for one or more letters, digits, '.', '_' or '+'
     *   ("ubuntu-<flavour>" names ubuntu-generic, ubuntu-aws...). The build service maps a
     *   request's buildType to a plugin and distro through them. A distro with no target listed
     *   is served under its own name (a release's target defaults to its distro).
     *   keyrings (ABI 1.6, optional): for each distro, the OpenPGP keyrings (files on the
     *   host) its archives are signed with. The host checks signatures with them when the
     *   user names no keyring for the distro; without them it needs one named.
     * Required: no.
     */
    kb_status (*describe)(kb_plugin* plugin, const char** out);

    /* ---- ABI 1.5 ---- */

    /*
     * order_releases: a distro's releases in its version order, newest first (what --latest N
     * keeps), by rules only the plugin knows: dpkg's for deb distros, rpm's for rpm distros.
     * request_json: {"schema":1, "distro":"...", "releases":[{...release...}, ...]}
     * *out: {"schema":1, "order":[2,0,1]}: every index of the request's releases once, newest
     *       first; releases the plugin finds equal keep their order.
     * Required: no. Without it (a plugin older than 1.5) the host uses a natural version order
     * of "release" (runs of digits compared as numbers, other runs as text), then "variant",
     * which names no distro's rules.
     */
    kb_status (*order_releases)(kb_plugin* plugin, const char* request_json, const char** out);
} kb_plugin_api;

/* Size of the 1.0 table: every plugin table is at least this large. */
#define KBUILD_PLUGIN_API_SIZE_1_0 offsetof(kb_plugin_api, describe)
/* Size of the 1.1 to 1.4 tables (the ones before order_releases). */
#define KBUILD_PLUGIN_API_SIZE_1_4 offsetof(kb_plugin_api, order_releases)

/* The exported entry point. */
typedef const kb_plugin_api* (*kb_plugin_entry_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* KBUILD_PLUGIN_API_H */
