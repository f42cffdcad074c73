#include "app/cli.h"

#include "app/commands.h"
#include "app/config.h"
#include "output/artifacts.h"
#include "serve/serve.h"
#include "util/log.h"

#include <kbuild/plugin_api.h>

#include <CLI/CLI.hpp>

#include <iostream>

#ifndef KBUILD_VERSION
#define KBUILD_VERSION "0.0.0"
#endif

namespace kbuild {
namespace {

void add_output_flag(CLI::App* verb, std::string& output) {
    verb->add_option("--output", output, "table (default) or json")->check(CLI::IsMember({"table", "json"}));
}

// The flags that pick kernels: shared by crawl, batch and build.
void add_target_flags(CLI::App* verb, TargetOptions& target, bool with_files, bool distro_required = true) {
    auto* distro = verb->add_option("--distro", target.distro, "Distribution (see kbuild plugins)");
    if (distro_required) distro->required();
    verb->add_option("--arch", target.arch, "Architecture (default amd64)");
    verb->add_option("--mirror", target.mirrors,
                     "Repository base URL (repeatable; default: the plugin's, e.g. apt's sources)")
        ->type_name("URL");
    verb->add_option("--option", target.plugin_options, "Plugin option KEY=VALUE (repeatable)")->type_name("KEY=VALUE");
    verb->add_option("--kernel", target.kernel_regex, "Only releases matching this regex")->type_name("REGEX");
    verb->add_option("--latest", target.latest, "Only the N newest releases")->type_name("N");
    verb->add_option("--shard", target.shard,
                     "Only shard K of N (K from 0): a stable slice by distro and release, for fleets")
        ->type_name("K/N");
    verb->add_option("--jobs,-j", target.jobs, "Downloads (and builds) at once (default 4)")->check(CLI::Range(1, 256));
    verb->add_option("--kernel-config", target.kernel_config,
                     "A source kernel's config (vanilla): a file, a URL, or base64:DATA")
        ->type_name("CONFIG");
    verb->add_option("--keyring", target.keyrings,
                     "Check signatures (the mirrors' metadata, rpm packages, Flatcar DIGESTS) with this "
                     "keyring instead of the distro's (repeatable)")
        ->type_name("FILE")
        ->allow_extra_args(false);
    verb->add_option("--max-shrink", target.shrink.max_share,
                     "Refuse a crawl that lost more than this share of the last crawl's releases (default 0.25)")
        ->type_name("SHARE")
        ->check(CLI::Range(0.0, 1.0));
    verb->add_flag("--allow-shrink", target.shrink.allow,
                   "Accept a crawl that lost more than --max-shrink of its releases, or a whole flavour or "
                   "repository (warned about)");
    verb->add_option("--insecure-mirror", target.insecure_mirrors,
                     "Use this mirror without checking its signatures (said and recorded in index.json)")
        ->type_name("URL")
        ->allow_extra_args(false);
    if (with_files) {
        verb->add_option("files", target.files, "Local package files")->type_name("FILE");
        verb->add_option("--from-list", target.from_list,
                         "A file of package URLs or names, one per line (grouped by name only)")
            ->type_name("LIST");
    }
}

}  // namespace

int run_cli(int argc, char** argv) {
    CLI::App app{"kbuild: build kernel modules and eBPF probes for every kernel of every distro", "kbuild"};
    app.set_version_flag("--version", std::string("kbuild ") + KBUILD_VERSION + " (plugin ABI " +
                                          std::to_string(KBUILD_PLUGIN_ABI_MAJOR) + "." +
                                          std::to_string(KBUILD_PLUGIN_ABI_MINOR) + ")");
    app.require_subcommand(1);
    app.fallthrough();
    app.footer("Run 'kbuild <verb> --help' for a verb's flags and an example.");

    GlobalOptions global;
    app.add_option("--plugin-dir", global.plugin_dirs,
                   "Load plugins from DIR (repeatable; replaces the default search path)")
        ->type_name("DIR");
    app.add_option("--cache-dir", global.cache_dir,
                   "Download and unpack cache (default $XDG_CACHE_HOME/kbuild, "
                   "/var/cache/kbuild as root)")
        ->type_name("DIR");
    app.add_option("--cache-max", global.cache_max,
                   "Keep the cache within SIZE (e.g. 20G): what no build uses is evicted, least recently used "
                   "first, as a run goes (default: the config's [cache] max, else no bound)")
        ->type_name("SIZE");
    app.add_option("--builders-dir", global.builder_dirs, "Also read builder image definitions from DIR (repeatable)")
        ->type_name("DIR");
    std::string config;
    app.add_option("--config", config,
                   "Per-distro mirrors and options (TOML; default $KBUILD_CONFIG, "
                   "~/.config/kbuild/config.toml, /etc/kbuild/config.toml, <prefix>/etc/kbuild/config.toml)")
        ->type_name("FILE");
    auto* verbose = app.add_flag("-v,--verbose", global.verbose, "Log debug detail");
    app.add_flag("-q,--quiet", global.quiet, "Log only warnings and errors")->excludes(verbose);

    std::string output = "table";
    TargetOptions target;
    BuildCommandOptions build;

    auto* plugins = app.add_subcommand("plugins", "List loaded plugins and the ones refused");
    add_output_flag(plugins, output);
    plugins->footer("Example:\n  kbuild plugins --plugin-dir ./build/lib/kbuild --output json");

    auto* crawl = app.add_subcommand("crawl", "List a distro's kernel releases and their packages");
    add_target_flags(crawl, target, false);
    add_output_flag(crawl, output);
    crawl->footer("Example:\n  kbuild crawl --distro debian --option suites=bookworm --output json");

    auto* batch = app.add_subcommand("batch", "Group package files or a URL list into releases");
    add_target_flags(batch, target, true);
    add_output_flag(batch, output);
    batch->footer("Example:\n  kbuild batch --distro debian --from-list kernels.txt --output json");

    auto* build_verb = app.add_subcommand("build", "Fetch, unpack, build and verify a module for each selected kernel");
    add_target_flags(build_verb, target, true, false);
    add_output_flag(build_verb, output);
    build_verb
        ->add_option("--from-bundle", build.from_bundle,
                     "Build from kernel bundles (kbuild bundle) instead of a distro's packages: "
                     "no plugin, no network. A bundle carries no signature: it is as trustworthy as "
                     "whoever made it (its sha256 is recorded in index.json)")
        ->type_name("FILE");
    build_verb->add_option("--module-src", build.module_src, "The module's source directory")
        ->required()
        ->type_name("DIR");
    build_verb
        ->add_option("--module", build.modules,
                     "A module that is an artifact (repeatable; its path in the source without .ko); "
                     "default: the modules the source's top Kbuild or Makefile declares (obj-m)")
        ->type_name("NAME");
    build_verb
        ->add_option("--module-name", build.module_name,
                     "Names the build, its logs and its default artifact (default: the declared module, "
                     "else the source's directory)")
        ->type_name("NAME");
    build_verb->add_option("--out", build.out_dir, "Artifacts, logs and index.json (default ./out)")->type_name("DIR");
    build_verb->add_option("--module-version", build.module_version,
                           "Version in artifact names (default: the module's, else a source digest)");
    build_verb
        ->add_option("--builder", build.builder,
                     "auto (default: docker when the daemon answers, else local), docker, local")
        ->check(CLI::IsMember({"auto", "docker", "local"}));
    auto* naming = build_verb
                       ->add_option("--naming", build.naming,
                                    "Artifact names: probe-builder (default), falco, collector (.ko.gz), service")
                       ->check(CLI::IsMember(naming_presets()));
    build_verb
        ->add_option("--naming-template", build.naming_template,
                     "Artifact names from fields: {module} {module_version} {arch} {kernelrelease} {kernelversion} "
                     "{config_md5} {config_sha256} {target} {distro} {variant} {machine}; .gz compresses")
        ->excludes(naming);
    build_verb->add_flag("--force", build.force, "Rebuild targets already built from the same inputs");
    auto* sign_key = build_verb
                         ->add_option("--sign-key", build.sign_key,
                                      "Sign each module as the kernel's sign-file does, with this PEM private key "
                                      "(with --sign-cert; the hash is the kernel config's CONFIG_MODULE_SIG_HASH)")
                         ->type_name("KEY");
    auto* sign_cert = build_verb
                          ->add_option("--sign-cert", build.sign_cert,
                                       "The signing key's X.509 certificate, PEM or DER (with --sign-key)")
                          ->type_name("CERT");
    sign_key->needs(sign_cert);
    sign_cert->needs(sign_key);
    int timeout_s = 900;
    build_verb->add_option("--build-timeout", timeout_s, "Seconds one build may take (default 900)")
        ->check(CLI::PositiveNumber);
    build_verb->footer(
        "Example:\n  kbuild build --distro debian --module-src examples/hello "
        "--option suites=bookworm --kernel '^6\\.1\\.0-[0-9]+-amd64$' --latest 1 --out out\n"
        "  kbuild build --from-bundle bundles/bundle-6.1.0-56-amd64.tgz --module-src examples/hello --out out\n"
        "  kbuild build --distro debian --option suites=bookworm --latest 1 --module-src examples/hello \\\n"
        "      --sign-key signing_key.pem --sign-cert signing_key.x509");

    std::string bundle_out = "bundles";
    auto* bundle_verb = app.add_subcommand(
        "bundle", "Write each selected kernel's header tree as a kernel-packer bundle (bundle-<uname>.tgz)");
    add_target_flags(bundle_verb, target, true);
    add_output_flag(bundle_verb, output);
    bundle_verb->add_option("--out", bundle_out, "Where the bundles go (default ./bundles)")->type_name("DIR");
    bundle_verb->footer(
        "A bundle holds the headers a module build needs (other architectures left out) and, at its root,\n"
        "BUNDLE_BUILD_DIR, BUNDLE_CHECKSUM, BUNDLE_DISTRO, BUNDLE_UNAME, BUNDLE_VERSION, BUNDLE_MAJOR and\n"
        "BUNDLE_MINOR; its paths are relative, so it builds wherever it is extracted.\n\n"
        "Example:\n  kbuild bundle --distro debian --option suites=bookworm --kernel '^6\\.1\\.0-[0-9]+-amd64$' "
        "--latest 1 --out bundles");

    ImagesCommandOptions images;
    auto* images_verb = app.add_subcommand("images", "Builder images: build or list them");
    images_verb->require_subcommand(1);
    auto* images_build =
        images_verb->add_subcommand("build", "Build builder images from their definitions (unchanged ones are kept)");
    images_build->add_option("names", images.names, "Definitions to build (default: all)")->type_name("NAME");
    images_build->add_option("--mirror", images.mirror, "debootstrap mirror (default: from apt's sources)")
        ->type_name("URL");
    images_build->add_flag("--force", images.force, "Rebuild even when the definition is unchanged");
    auto* rootfs = images_build
                       ->add_option("--rootfs", images.rootfs,
                                    "A root file system tarball with its compiler (one no Debian suite ships)")
                       ->type_name("TARBALL");
    images_build->add_option("--name", images.name, "--rootfs: the image is kbuild/builder-NAME")
        ->type_name("NAME")
        ->needs(rootfs);
    images_build->add_option("--gcc", images.gcc, "--rootfs: the gcc major inside")
        ->type_name("N")
        ->needs(rootfs)
        ->check(CLI::Range(1, 99));
    images_build->add_option("--clang", images.clang, "--rootfs: the clang major inside")
        ->type_name("N")
        ->needs(rootfs)
        ->check(CLI::Range(1, 99));
    images_build->add_option("--cc", images.cc, "--rootfs: the compiler command (default gcc, or clang)")
        ->type_name("CMD")
        ->needs(rootfs);
    images_build->add_option("--family", images.family, "--rootfs: the distribution family it suits")
        ->type_name("FAMILY")
        ->needs(rootfs);
    images_build
        ->add_option("--cross", images.cross,
                     "--rootfs: a kernel architecture it cross-builds for and its tools' prefix (repeatable)")
        ->type_name("ARCH=PREFIX")
        ->needs(rootfs);
    images_build->footer(
        "Example:\n  kbuild images build debian-bookworm\n"
        "  kbuild images build --rootfs centos7-devtools.tar.gz --name centos7 --gcc 4 --cc gcc --family centos");
    auto* images_list = images_verb->add_subcommand("list", "List kbuild's builder images");
    add_output_flag(images_list, output);
    images_list->footer("Example:\n  kbuild images list --output json");
    images_verb->footer("Example:\n  kbuild images build && kbuild images list");

    ServeFlags serve_flags;
    auto* serve = app.add_subcommand("serve", "The HTTP build service: builds the module a node's kernel lacks");
    serve->add_option("--listen", serve_flags.listen, "HOST:PORT (default 127.0.0.1:8093; port 0: any free one)");
    serve->add_option("--out", serve_flags.out, "Artifacts, logs, index.json files and service.json")->type_name("DIR");
    serve->add_option("--jobs,-j", serve_flags.jobs, "Builds at once (default 2)")->check(CLI::Range(1, 256));
    serve->add_option("--queue", serve_flags.queue, "Targets that may wait; a new one beyond gets 429 (default 64)")
        ->check(CLI::Range(1, 1000000));
    serve->add_option("--builder", serve_flags.builder, "auto (default), docker, local")
        ->check(CLI::IsMember({"auto", "docker", "local"}));
    serve->add_option("--token-file", serve_flags.token_file, "POST needs 'Authorization: Bearer <the file's text>'")
        ->type_name("FILE");
    auto* serve_sign_key = serve
                               ->add_option("--sign-key", serve_flags.sign_key,
                                            "Sign each module with this PEM private key (with --sign-cert)")
                               ->type_name("KEY");
    auto* serve_sign_cert =
        serve->add_option("--sign-cert", serve_flags.sign_cert, "The signing key's X.509 certificate (with --sign-key)")
            ->type_name("CERT");
    serve_sign_key->needs(serve_sign_cert);
    serve_sign_cert->needs(serve_sign_key);
    serve->footer(
        "Module sources and limits come from the config file's [serve] table (packaging/serve/config.toml).\n\n"
        "Example:\n  kbuild --config /etc/kbuild/config.toml serve --listen 127.0.0.1:8093 --out "
        "/var/lib/kbuild/serve");

    std::string prune_max;
    auto* cache_verb = app.add_subcommand("cache", "The download and unpack cache: list it, prune it");
    cache_verb->require_subcommand(1);
    auto* cache_list = cache_verb->add_subcommand("list", "The cache's entries, least recently used first");
    add_output_flag(cache_list, output);
    cache_list->footer("Example:\n  kbuild --cache-dir /var/cache/kbuild cache list");
    auto* cache_prune = cache_verb->add_subcommand(
        "prune", "Remove what killed runs left, then evict what no build uses, least recently used first");
    cache_prune
        ->add_option("--max", prune_max,
                     "Evict down to SIZE (e.g. 20G; default: --cache-max or the config's, else everything unused)")
        ->type_name("SIZE");
    cache_prune->footer("Example:\n  kbuild cache prune --max 20G");
    cache_verb->footer("Example:\n  kbuild cache list\n  kbuild cache prune --max 20G");

    std::vector<std::string> index_files;
    auto* index_verb = app.add_subcommand("index", "index.json files: merge the shards' into one");
    index_verb->require_subcommand(1);
    auto* index_merge = index_verb->add_subcommand(
        "merge", "Merge index.json files (one per shard) to stdout; a target two files disagree on is an error");
    index_merge->add_option("files", index_files, "The index.json files")->required()->type_name("FILE");
    index_merge->footer("Example:\n  kbuild index merge shard-*/index.json > out/index.json");
    index_verb->footer("Example:\n  kbuild index merge shard-*/index.json > out/index.json");

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        // CLI11 reads an unknown verb as a stray argument; name it instead.
        if (app.get_subcommands().empty() && !app.remaining().empty()) {
            std::string verbs;
            for (const auto* sub : app.get_subcommands({})) verbs += (verbs.empty() ? "" : ", ") + sub->get_name();
            std::cerr << "error: unknown verb '" << app.remaining().front() << "' (verbs: " << verbs << ")\n";
            return kExitUsage;
        }
        const int code = app.exit(e);
        return code == 0 ? 0 : kExitUsage;
    }
    build.build_timeout = std::chrono::seconds(timeout_s);

    setup_logging(global.quiet ? Verbosity::quiet : global.verbose ? Verbosity::verbose : Verbosity::normal);
    try {
        if (global.cache_max.empty())
            if (const auto file = config_file(config)) global.cache_max = read_cache_config(*file).value_or("");
        cache_max_of(global);  // a bad size is a usage error before any work
    } catch (const Error& e) {
        std::cerr << "error: " << e.what() << '\n';
        return kExitUsage;
    }
    if (plugins->parsed()) return plugins_command(global, output);
    if (crawl->parsed() || batch->parsed() || build_verb->parsed() || bundle_verb->parsed()) {
        try {
            if (const auto file = config_file(config)) {
                apply_config(*file, target);
                // The command line's key and certificate, else the config's.
                if (build_verb->parsed() && build.sign_key.empty())
                    if (const auto sign = read_sign_config(*file)) {
                        build.sign_key = sign->key;
                        build.sign_cert = sign->cert;
                    }
            }
        } catch (const Error& e) {
            std::cerr << "error: " << e.what() << '\n';
            return kExitUsage;
        }
    }
    if (crawl->parsed()) return crawl_command(global, target, output);
    if (batch->parsed()) return batch_command(global, target, output);
    if (build_verb->parsed()) return build_command(global, target, build, output);
    if (bundle_verb->parsed()) return bundle_command(global, target, bundle_out, output);
    if (images_build->parsed()) return images_build_command(global, images);
    if (images_list->parsed()) return images_list_command(global, output);
    if (serve->parsed()) return serve_command(global, config, serve_flags);
    if (index_merge->parsed()) return index_merge_command(index_files);
    if (cache_list->parsed()) return cache_list_command(global, output);
    if (cache_prune->parsed()) return cache_prune_command(global, prune_max);
    return kExitUsage;
}

}  // namespace kbuild
