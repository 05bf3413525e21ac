// types.cpp — the table behind types.h. Geometry from ggml's type traits.
#include "quants/types.h"

#include <cctype>

namespace ember {

static const TypeTraits kTypes[] = {
    {GGMLType::F32, "F32", 1, 4},          {GGMLType::F16, "F16", 1, 2},
    {GGMLType::Q4_0, "Q4_0", 32, 18},      {GGMLType::Q4_1, "Q4_1", 32, 20},
    {GGMLType::Q5_0, "Q5_0", 32, 22},      {GGMLType::Q5_1, "Q5_1", 32, 24},
    {GGMLType::Q8_0, "Q8_0", 32, 34},      {GGMLType::Q8_1, "Q8_1", 32, 36},
    {GGMLType::Q2_K, "Q2_K", 256, 84},     {GGMLType::Q3_K, "Q3_K", 256, 110},
    {GGMLType::Q4_K, "Q4_K", 256, 144},    {GGMLType::Q5_K, "Q5_K", 256, 176},
    {GGMLType::Q6_K, "Q6_K", 256, 210},    {GGMLType::Q8_K, "Q8_K", 256, 292},
    {GGMLType::IQ2_XXS, "IQ2_XXS", 256, 66}, {GGMLType::IQ2_XS, "IQ2_XS", 256, 74},
    {GGMLType::IQ3_XXS, "IQ3_XXS", 256, 98}, {GGMLType::IQ1_S, "IQ1_S", 256, 50},
    {GGMLType::IQ4_NL, "IQ4_NL", 32, 18},  {GGMLType::IQ3_S, "IQ3_S", 256, 110},
    {GGMLType::IQ2_S, "IQ2_S", 256, 82},   {GGMLType::IQ4_XS, "IQ4_XS", 256, 136},
    {GGMLType::I8, "I8", 1, 1},            {GGMLType::I16, "I16", 1, 2},
    {GGMLType::I32, "I32", 1, 4},          {GGMLType::I64, "I64", 1, 8},
    {GGMLType::F64, "F64", 1, 8},          {GGMLType::IQ1_M, "IQ1_M", 256, 56},
    {GGMLType::BF16, "BF16", 1, 2},        {GGMLType::TQ1_0, "TQ1_0", 256, 54},
    {GGMLType::TQ2_0, "TQ2_0", 256, 66},   {GGMLType::MXFP4, "MXFP4", 32, 17},
};

const TypeTraits* type_traits(uint32_t id) {
    for (const TypeTraits& t : kTypes)
        if (uint32_t(t.type) == id) return &t;
    return nullptr;
}

const TypeTraits* type_by_name(const std::string& name) {
    for (const TypeTraits& t : kTypes) {
        const char* a = t.name;
        size_t i = 0;
        for (; a[i] && i < name.size(); ++i)
            if (std::toupper(static_cast<unsigned char>(name[i])) != a[i]) break;
        if (!a[i] && i == name.size()) return &t;
    }
    return nullptr;
}

}  // namespace ember
