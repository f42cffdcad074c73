// Trust in what mirrors serve: a repository's signed metadata (a Debian InRelease, a Release
// and its Release.gpg, an rpm repomd.xml and its .asc, a Flatcar DIGESTS.asc) is checked with
// gpgv, as apt does, and an rpm package's own signature with rpmkeys, as dnf does, against the
// keyrings trusted for the distro being served or for the mirror it came from, before anything
// in it is used. The host lends this to plugins as the verify service.
#pragma once

#include <kbuild/types.hpp>

#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace kbuild {

struct TrustPolicy {
    // Keyrings per distro: the defaults (Debian's and Ubuntu's archive keyrings), replaced by
    // a distro's `keyring` in the config file, replaced by --keyring.
    std::map<std::string, std::vector<std::filesystem::path>> distro_keyrings;
    // URL prefix -> keyring, from the config's mirror-keyring: wins over the two above.
    std::vector<std::pair<std::string, std::filesystem::path>> mirror_keyrings;
    // URL prefixes used without checking (--insecure-mirror, a distro's verify = false): said
    // in a warning on every run that uses them and recorded in index.json.
    std::vector<std::string> insecure_mirrors;
    // Distros whose every source is used without checking (the config's verify = false).
    std::set<std::string> insecure_distros;
};

// One source used without its signature checked, and why.
struct UnverifiedSource {
    std::string url;
    std::string reason;
    // The package it vouches for (VerifyRequest::package): recorded against that package's
    // target alone. Empty: repository metadata, recorded against every target of the run.
    std::string package;
};

class Trust {
public:
    // Dearmored copies of ASCII-armoured keyrings (an RPM-GPG-KEY file) and the signed text of
    // clearsigned files go under <cache_dir>/trust.
    Trust(TrustPolicy policy, std::filesystem::path cache_dir);

    // Checks one downloaded file for the distro being served. Throws kbuild::Error with one line
    // naming the URL and the cause ("<url>: signature by unknown key 0x...", "<url>: no
    // signature", "<url>: BAD signature by key 0x...", "<url>: not signed"). Thread-safe.
    Verified verify(const VerifyRequest& request, const std::string& distro);

    // The sources used unverified so far (each once), for warnings and index.json.
    std::vector<UnverifiedSource> unverified() const;

    // Adds sources known to be unverified from an earlier run (a kernel tree unpacked then and
    // reused now), each once.
    void note_unverified(const std::vector<UnverifiedSource>& sources);

    // What the checks of a distro's sources depend on: its keyrings (by content), the mirrors'
    // keyrings, the insecure mirrors and whether the distro is checked at all. Empty when none
    // of these is set. A kernel tree unpacked (its packages checked) under one is not reused
    // under another.
    std::string fingerprint(const std::string& distro) const;

    const TrustPolicy& policy() const { return policy_; }

private:
    std::vector<std::filesystem::path> keyrings_for(const std::string& url, const std::string& distro) const;
    std::filesystem::path usable_keyring(const std::filesystem::path& keyring);
    Verified unchecked(const VerifyRequest& request, const std::string& reason, bool warn);
    Verified verify_rpm(const VerifyRequest& request, const std::vector<std::filesystem::path>& keyrings);
    // A private rpm database holding the keyrings' keys, made once per set of keyrings.
    std::filesystem::path rpm_database(const std::vector<std::filesystem::path>& keyrings);

    TrustPolicy policy_;
    std::filesystem::path dir_;
    mutable std::mutex mutex_;
    std::mutex rpm_mutex_;  // one rpm database made at a time
    std::vector<UnverifiedSource> unverified_;
    std::set<std::string> warned_;
};

// What gpgv's status lines (--status-fd) say about a signature: the signer's fingerprint when
// one good signature with a strong digest was made by a trusted key and none is bad; else throws
// Error with the cause in words ("signature by unknown key 0x...", "no signature", ...).
std::string read_gpgv_status(const std::string& status);

// What `rpmkeys --checksig -v` says of a package: the signing key IDs ("a,b") when every
// signature and digest it checked is OK and there is at least one signature; else throws Error
// with the cause ("rpm signature by unknown key ID 32f8a030", "BAD rpm signature ...", "not signed").
std::string read_rpmkeys_output(const std::string& output);

// The ASCII-armoured form of a binary OpenPGP keyring (rpmkeys --import reads only armour); an
// armoured one is returned as it is.
std::string armoured_keyring(const std::string& bytes);

// The binary form of an ASCII-armoured OpenPGP key file (one or more PUBLIC KEY BLOCKs), which
// gpgv's --keyring needs; a binary file is returned as it is. Throws Error naming `name` when an
// armour block is damaged.
std::string dearmored_keyring(const std::string& bytes, const std::string& name);

}  // namespace kbuild
