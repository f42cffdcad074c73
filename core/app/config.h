// The config file: per-distro defaults for the flags that pick kernels, so a CI job or a
// packager names its mirrors and series once. TOML, one table per distro:
//
//   [ubuntu]
//   mirror = ["http://mirror.example/ubuntu", "http://security.example/ubuntu"]
//   option = ["series=jammy,noble", "pockets=release,updates,security"]
//
// and one table for `kbuild build`'s module signing (module_sign.h), used when the command line
// names no key:
//
//   [sign]
//   key = "/etc/kbuild/signing_key.pem"     # PEM private key (may hold the certificate too)
//   cert = "/etc/kbuild/signing_key.x509"   # X.509, PEM or DER
//
// and one for the cache's bound (--cache-max):
//
//   [cache]
//   max = "50G"
//
// Read from --config FILE, else $KBUILD_CONFIG, else $XDG_CONFIG_HOME/kbuild/config.toml
// (~/.config/kbuild/config.toml), else /etc/kbuild/config.toml, else <prefix>/etc/kbuild/config.toml
// of an install into a prefix, the first that exists.
#pragma once

#include "targets/targets.h"

#include <filesystem>
#include <optional>

namespace kbuild {

struct ServeSettings;

// The config file to read: the one given, else the first default that exists.
std::optional<std::filesystem::path> config_file(const std::string& given);

// Fills what the command line left unset from the distro's table: mirrors when none were
// given, options whose key the command line did not set (each noted in option_files, so an
// unknown one is blamed on the file). Throws Error naming the file on a
// syntax error or a key it does not know.
void apply_config(const std::filesystem::path& file, TargetOptions& target);

// The [sign] table's key and certificate (relative paths are the file's directory's), nullopt
// when it has none. Throws Error naming the file on an unknown key, or one of the two alone.
struct SignFiles {
    std::string key, cert;
};
std::optional<SignFiles> read_sign_config(const std::filesystem::path& file);

// The [cache] table's max (a size, "50G"), nullopt when it has none. Throws Error naming the
// file on an unknown key.
std::optional<std::string> read_cache_config(const std::filesystem::path& file);

// Reads [serve] and [serve.modules.NAME] over `settings`. Throws UsageError naming the file and
// the key on an unknown key or a value of the wrong kind.
void read_serve_config(const std::filesystem::path& file, ServeSettings& settings);

}  // namespace kbuild
