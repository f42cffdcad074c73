// The verbs behind the command line. cli.cpp parses flags into these options; each function
// prints data on stdout, logs on stderr, and returns the exit code.
#pragma once

#include "targets/targets.h"

#include <kbuild/types.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace kbuild {

class Builder;
class Docker;
class ModuleSigner;
class PluginInstance;

// Exit codes: 1 the work failed (some of it), 2 the command line or config is wrong.
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

// Runs a verb: an error it throws is logged as one line and becomes the exit code (a
// UsageError 2, any other 1).
int run_guarded(const std::function<int()>& verb);

// Flags every verb shares.
struct GlobalOptions {
    std::vector<std::string> plugin_dirs;
    std::vector<std::string> builder_dirs;  // builder image definitions; empty: the default
    std::string cache_dir;                  // empty: $XDG_CACHE_HOME/kbuild, /var/cache/kbuild as root
    std::string cache_max;                  // --cache-max (else the config's [cache] max); empty: no bound
    bool verbose = false;
    bool quiet = false;
};

struct BuildCommandOptions {
    std::string module_src;
    std::vector<std::string> modules;  // --module
    std::string module_name;           // --module-name
    std::string out_dir = "out";
    std::string module_version;
    std::string builder = "auto";          // auto | docker | local
    std::string naming;                    // a preset's name; "": probe-builder
    std::string naming_template;           // wins over naming
    std::vector<std::string> from_bundle;  // kernel bundles: built with no plugin, no network
    bool force = false;
    std::chrono::seconds build_timeout{900};
    std::string sign_key, sign_cert;  // both or neither: sign each module (module_sign.h)
};

struct ImagesCommandOptions {
    std::vector<std::string> names;  // empty: every definition
    std::string mirror;              // debootstrap mirror; empty: apt's
    bool force = false;
    // --rootfs: one image from a user's root file system (its name, compiler, family).
    std::string rootfs, name, cc, family;
    int gcc = 0, clang = 0;
    std::vector<std::string> cross;  // ARCH=PREFIX: its cross compilers
};

// The signer of --sign-key/--sign-cert (or a config's), null when both are empty. A key that is
// unreadable, holds no key, or is not the certificate's: a UsageError naming the file.
std::shared_ptr<const ModuleSigner> load_signer(const std::string& key, const std::string& cert);

int images_build_command(const GlobalOptions& global, const ImagesCommandOptions& images);
int images_list_command(const GlobalOptions& global, const std::string& output);

int plugins_command(const GlobalOptions& global, const std::string& output);
int crawl_command(const GlobalOptions& global, const TargetOptions& target, const std::string& output);
int batch_command(const GlobalOptions& global, const TargetOptions& target, const std::string& output);
int build_command(const GlobalOptions& global, const TargetOptions& target, const BuildCommandOptions& build,
                  const std::string& output);

// kbuild bundle: each selected release's header tree as bundle-<uname>.tgz in out_dir.
int bundle_command(const GlobalOptions& global, const TargetOptions& target, const std::string& out_dir,
                   const std::string& output);

// kbuild index merge A.json B.json ...: the shards' indexes as one, on stdout.
int index_merge_command(const std::vector<std::string>& files);

// kbuild cache list: the cache's entries, least recently used first, with their size and use.
int cache_list_command(const GlobalOptions& global, const std::string& output);
// kbuild cache prune [--max SIZE]: removes leftovers of killed runs, then evicts what no one
// uses, least recently used first, down to max (empty: global.cache_max, else everything unused).
int cache_prune_command(const GlobalOptions& global, const std::string& max);

// The bound --cache-max (or the config) sets, in bytes; 0: none. Throws UsageError on a bad size.
std::uint64_t cache_max_of(const GlobalOptions& global);

// The flags of `kbuild serve`; empty or 0: the config's value, else the default.
struct ServeFlags {
    std::string listen, out, builder, token_file, sign_key, sign_cert;
    int jobs = 0, queue = 0;
};

// kbuild serve: runs the build service (serve/) until SIGINT or SIGTERM. `config`: the --config
// flag (may be empty).
int serve_command(const GlobalOptions& global, const std::string& config, const ServeFlags& flags);

// The cache directory the flags and environment name.
std::filesystem::path default_cache_dir();

}  // namespace kbuild
