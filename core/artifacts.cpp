#include "artifacts.h"

#include <algorithm>
#include <ctime>
#include <fstream>

namespace fs = std::filesystem;

namespace kbuild {

std::string probe_builder_name(const ArtifactNameFields& f) {
    return f.module + "-" + f.module_version + "-" + f.arch + "-" + f.kernelrelease + "-" +
           f.config_md5 + ".ko";
}

std::string utc_now() {
    const std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return text;
}

Index::Index(fs::path out_dir) : out_dir_(std::move(out_dir)), path_(out_dir_ / "index.json") {
    std::ifstream in(path_);
    if (!in) return;
    const Json doc = Json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (!doc.is_object() || !doc.contains("targets"))
        throw Error(path_.string() + ": not a kbuild index (move it away to start a new one)");
    records_ = doc["targets"].get<std::vector<TargetRecord>>();
}

namespace {

// What identifies a target in the index.
auto key_of(const TargetRecord& r) {
    return std::tie(r.distro, r.arch, r.kernelrelease, r.variant, r.module);
}

}  // namespace

std::optional<TargetRecord> Index::find(const TargetRecord& target) const {
    std::lock_guard lock(mutex_);
    for (const auto& r : records_)
        if (key_of(r) == key_of(target)) return r;
    return std::nullopt;
}

void Index::put(const TargetRecord& record) {
    std::lock_guard lock(mutex_);
    auto it = std::find_if(records_.begin(), records_.end(),
                           [&](const TargetRecord& r) { return key_of(r) == key_of(record); });
    if (it != records_.end()) *it = record;
    else records_.push_back(record);
    std::sort(records_.begin(), records_.end(),
              [](const TargetRecord& a, const TargetRecord& b) { return key_of(a) < key_of(b); });
    save_locked();
}

std::vector<TargetRecord> Index::records() const {
    std::lock_guard lock(mutex_);
    return records_;
}

void Index::save_locked() const {
    fs::create_directories(out_dir_);
    const fs::path temporary = path_.string() + ".tmp";
    {
        std::ofstream out(temporary, std::ios::trunc);
        out << Json{{"schema", kSchema}, {"targets", records_}}.dump(2) << '\n';
        if (!out) throw Error(temporary.string() + ": cannot write");
    }
    fs::rename(temporary, path_);
}

}  // namespace kbuild
