#include "trust.h"

#include "process.h"

#include <kbuild/digest.hpp>
#include <kbuild/files.hpp>

#include <Poco/Base64Decoder.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace fs = std::filesystem;

namespace kbuild {
namespace {

std::vector<std::string> words_of(const std::string& line) {
    std::istringstream in(line);
    std::vector<std::string> words;
    for (std::string w; in >> w;) words.push_back(w);
    return words;
}

bool has_prefix(const std::string& text, const std::string& prefix) {
    return text.compare(0, prefix.size(), prefix) == 0;
}

// Whether `url` lies under the mirror `prefix` ("http://m/debian" covers "http://m/debian/dists/...").
bool under(const std::string& url, std::string prefix) {
    while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
    return !prefix.empty() && has_prefix(url, prefix) && (url.size() == prefix.size() || url[prefix.size()] == '/');
}

// A file written whole or not at all: a temporary beside it, renamed into place.
void write_atomically(const fs::path& path, const std::string& bytes) {
    static std::atomic<unsigned> counter{0};
    const fs::path tmp = path.string() + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    {
        std::ofstream out(tmp, std::ios::binary);
        out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        if (!out.flush()) throw Error(tmp.string() + ": cannot write");
    }
    fs::rename(tmp, path);
}

// The signed text of a clearsigned message, read without checking it: only for a source the
// user marked insecure. Armour headers end at the first blank line; "- " is dash-escaping.
std::string clearsigned_text(const std::string& text) {
    std::istringstream in(text);
    std::string line, body;
    bool begun = false, in_headers = true;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (!begun) {
            begun = has_prefix(line, "-----BEGIN PGP SIGNED MESSAGE-----");
            continue;
        }
        if (in_headers) {
            in_headers = line.find_first_not_of(" \t") != std::string::npos;
            continue;
        }
        if (has_prefix(line, "-----BEGIN PGP SIGNATURE-----")) break;
        if (has_prefix(line, "- ")) line.erase(0, 2);
        body += line + '\n';
    }
    return begun ? body : text;
}

}  // namespace

TrustPolicy default_trust_policy() {
    TrustPolicy policy;
    policy.distro_keyrings["debian"] = {"/usr/share/keyrings/debian-archive-keyring.gpg"};
    policy.distro_keyrings["ubuntu"] = {"/usr/share/keyrings/ubuntu-archive-keyring.gpg"};
    return policy;
}

SignatureCheck read_gpgv_status(const std::string& status) {
    std::istringstream in(status);
    std::string good, bad, first_problem;
    for (std::string line; std::getline(in, line);) {
        const std::vector<std::string> w = words_of(line);
        if (w.size() < 2 || w[0] != "[GNUPG:]") continue;
        const std::string& what = w[1];
        const std::string key = w.size() > 2 ? "0x" + w[2] : "";
        std::string problem;
        if (what == "VALIDSIG" && w.size() > 9) {
            // Field 9 is the digest algorithm: MD5 (1), SHA-1 (2) and RIPEMD-160 (3) are refused,
            // as apt refuses them.
            const std::string& digest = w[9];
            if (digest == "1" || digest == "2" || digest == "3")
                problem = "signature by key 0x" + w[2] + " uses a weak digest (algorithm " + digest + ")";
            else if (good.empty())
                good = w[2];
        } else if (what == "BADSIG") {
            bad = "BAD signature by key " + key;
        } else if (what == "NO_PUBKEY") {
            problem = "signature by unknown key " + key;
        } else if (what == "EXPKEYSIG") {
            problem = "signature by expired key " + key;
        } else if (what == "REVKEYSIG") {
            problem = "signature by revoked key " + key;
        } else if (what == "EXPSIG") {
            problem = "expired signature by key " + key;
        } else if (what == "NODATA") {
            problem = "no signature";
        } else if (what == "ERRSIG" && w.size() > 7 && w[7] != "9") {
            problem = "signature by key " + key + " cannot be checked (gpgv error " + w[7] + ")";
        }
        if (!problem.empty() && first_problem.empty()) first_problem = problem;
    }
    if (!bad.empty()) return {"", bad};
    if (!good.empty()) return {good, ""};
    return {"", first_problem.empty() ? "no valid signature" : first_problem};
}

std::string dearmored_keyring(const std::string& bytes, const std::string& name) {
    const std::string begin = "-----BEGIN PGP PUBLIC KEY BLOCK-----";
    const std::string end = "-----END PGP PUBLIC KEY BLOCK-----";
    if (bytes.find(begin) == std::string::npos) return bytes;
    std::string binary;
    for (std::size_t pos = bytes.find(begin); pos != std::string::npos; pos = bytes.find(begin, pos)) {
        const std::size_t stop = bytes.find(end, pos);
        if (stop == std::string::npos) throw Error(name + ": armoured key block has no END line");
        std::istringstream block(bytes.substr(pos + begin.size(), stop - pos - begin.size()));
        // Armour headers ("Comment: ...") end at the first blank line; the base64 ends at the
        // "=XXXX" checksum line.
        std::string line, base64;
        bool in_headers = true;
        std::getline(block, line);  // the rest of the BEGIN line
        while (std::getline(block, line)) {
            if (!line.empty() && line.back() == '\r') line.pop_back();
            const bool blank = line.find_first_not_of(" \t") == std::string::npos;
            if (in_headers) {
                if (blank) in_headers = false;
                else if (line.find(':') == std::string::npos) in_headers = false, base64 += line;
                continue;
            }
            if (blank) continue;
            if (line[0] == '=') break;
            base64 += line;
        }
        std::istringstream encoded(base64);
        Poco::Base64Decoder decoder(encoded);
        std::string decoded((std::istreambuf_iterator<char>(decoder)), std::istreambuf_iterator<char>());
        if (decoded.empty()) throw Error(name + ": armoured key block holds no key");
        binary += decoded;
        pos = stop + end.size();
    }
    return binary;
}

Trust::Trust(TrustPolicy policy, fs::path cache_dir) : policy_(std::move(policy)), dir_(cache_dir / "trust") {}

std::vector<fs::path> Trust::keyrings_for(const std::string& url, const std::string& distro) const {
    std::vector<fs::path> found;
    for (const auto& [prefix, keyring] : policy_.mirror_keyrings)
        if (under(url, prefix)) found.push_back(keyring);
    if (!found.empty()) return found;
    const auto it = policy_.distro_keyrings.find(distro);
    return it == policy_.distro_keyrings.end() ? found : it->second;
}

// gpgv reads binary keyrings only: an armoured one is dearmored once into the cache, named by
// its sha256.
fs::path Trust::usable_keyring(const fs::path& keyring) {
    std::string bytes;
    try {
        bytes = read_file(keyring.string());
    } catch (const Error&) {
        throw Error(keyring.string() + ": keyring cannot be read (give --keyring FILE, or install the distro's "
                                       "archive keyring package)");
    }
    const std::string binary = dearmored_keyring(bytes, keyring.string());
    if (binary.size() == bytes.size()) return keyring;
    const fs::path copy = dir_ / "keyrings" / (sha256_text(bytes) + ".gpg");
    if (!fs::exists(copy)) {
        fs::create_directories(copy.parent_path());
        write_atomically(copy, binary);
    }
    return copy;
}

Verified Trust::unchecked(const VerifyRequest& request, const std::string& reason, bool warn) {
    {
        std::lock_guard lock(mutex_);
        if (warned_.insert(request.url).second) {
            unverified_.push_back({request.url, reason});
            if (warn) spdlog::warn("{}: used without checking its signature ({})", request.url, reason);
            else spdlog::debug("{}: used without checking its signature ({})", request.url, reason);
        }
    }
    Verified verified{request.file, "", reason};
    if (request.inline_signed) {
        fs::create_directories(dir_ / "signed");
        const fs::path text = dir_ / "signed" / (sha256_file(request.file) + ".unchecked.txt");
        write_atomically(text, clearsigned_text(read_file(request.file)));
        verified.path = text.string();
    }
    return verified;
}

Verified Trust::verify(const VerifyRequest& request, const std::string& distro) {
    for (const auto& prefix : policy_.insecure_mirrors)
        if (under(request.url, prefix)) return unchecked(request, "insecure mirror " + prefix, true);
    if (policy_.insecure_distros.count(distro)) return unchecked(request, "verify = false for " + distro, true);
    const std::vector<fs::path> keyrings = keyrings_for(request.url, distro);
    if (keyrings.empty()) {
        if (!request.required) return unchecked(request, "no key configured for " + distro, false);
        throw Error(request.url + ": no keyring for " + (distro.empty() ? "this source" : distro) +
                    " to check it with (give --keyring FILE, or keyring in the config file)");
    }
    if (!request.inline_signed && request.signature.empty()) throw Error(request.url + ": no signature");

    fs::create_directories(dir_ / "signed");
    // gpgv reads no keyring of its own: an empty home keeps a user's trustedkeys.kbx out.
    const fs::path home = dir_ / "gnupg-home";
    fs::create_directories(home);
    fs::permissions(home, fs::perms::owner_all, fs::perm_options::replace);
    std::vector<std::string> argv = {"gpgv", "--homedir", home.string(), "--status-fd", "1"};
    for (const auto& keyring : keyrings) argv.insert(argv.end(), {"--keyring", usable_keyring(keyring).string()});
    fs::path text;
    if (request.inline_signed) {
        static std::atomic<unsigned> counter{0};
        text = dir_ / "signed" / (sha256_file(request.file) + ".txt");
        const fs::path tmp = text.string() + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
        argv.insert(argv.end(), {"--output", tmp.string(), request.file});
        const ProcessResult run = run_process(argv);
        const SignatureCheck check = read_gpgv_status(run.out);
        // gpgv exits non-zero when one of several signatures is by a key it lacks; one good
        // signature and no bad one is enough, as for apt.
        if (!check.error.empty() || !fs::exists(tmp)) {
            std::error_code ec;
            fs::remove(tmp, ec);
            throw Error(request.url + ": " + (check.error.empty() ? "gpgv failed: " + run.err : check.error));
        }
        fs::rename(tmp, text);
        return {text.string(), check.signed_by, ""};
    }
    argv.insert(argv.end(), {request.signature, request.file});
    const ProcessResult run = run_process(argv);
    const SignatureCheck check = read_gpgv_status(run.out);
    if (!check.error.empty())
        throw Error(request.url + ": " + (check.error.empty() ? "gpgv failed: " + run.err : check.error));
    return {request.file, check.signed_by, ""};
}

std::vector<UnverifiedSource> Trust::unverified() const {
    std::lock_guard lock(mutex_);
    return unverified_;
}

}  // namespace kbuild
