// core/ is layers that link only downward (core/CMakeLists.txt): an include running the wrong
// way must fail the build, and no include may step around the layers.
#include "test_util.h"

#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>

namespace fs = std::filesystem;
using namespace kbuild;

TEST(Layering, EveryIncludeOfCoreNamesALayerAndAFileInIt) {
    const fs::path core = test::source_dir() / "core";
    std::set<std::string> layers;
    for (const auto& entry : fs::directory_iterator(core))
        if (entry.is_directory()) layers.insert(entry.path().filename().string());
    ASSERT_GE(layers.size(), 8u) << "core/ is not in layers";
    const std::regex quoted(R"(^\s*#\s*include\s*"([^"]+)\")");
    int includes = 0;
    for (const auto& entry : fs::recursive_directory_iterator(core)) {
        if (!entry.is_regular_file()) continue;
        const std::string ext = entry.path().extension().string();
        if (ext != ".h" && ext != ".cpp") continue;
        EXPECT_NE(entry.path().parent_path(), core) << entry.path() << ": a source outside every layer";
        std::ifstream in(entry.path());
        int number = 0;
        for (std::string line; std::getline(in, line);) {
            ++number;
            std::smatch m;
            if (!std::regex_search(line, m, quoted)) continue;
            ++includes;
            const fs::path named = m[1].str();
            const std::string where = entry.path().lexically_relative(core).string() + ":" + std::to_string(number);
            const std::string layer = named.begin()->string();
            EXPECT_TRUE(layers.count(layer) && std::distance(named.begin(), named.end()) == 2)
                << where << ": #include \"" << named.string() << "\" does not name a layer's header as layer/file.h";
            EXPECT_TRUE(fs::is_regular_file(core / named)) << where << ": " << named << " is not in core/";
        }
    }
    EXPECT_GT(includes, 100);
}

TEST(Layering, AnIncludeOfAHigherLayerDoesNotCompile) {
    const ProcessResult right = test::build_target("layering_probe_right_way");
    ASSERT_EQ(right.exit_code, 0) << "a fetch file including util/ should build:\n" << right.out + right.err;
    const ProcessResult wrong = test::build_target("layering_probe_wrong_way");
    EXPECT_NE(wrong.exit_code, 0) << "a fetch file including serve/ built:\n" << wrong.out + wrong.err;
    EXPECT_NE((wrong.out + wrong.err).find("serve/serve.h"), std::string::npos) << wrong.out + wrong.err;
}
