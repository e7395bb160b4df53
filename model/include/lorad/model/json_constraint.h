// Constrained decoding for JSON: the OpenAI API's response_format
// {"type": "json_object"} and {"type": "json_schema", ...}. A
// TokenConstraint from this factory only allows tokens that keep the output
// a prefix of a JSON text the format accepts, so a generation that ends at
// Complete() always parses (and matches the schema).
//
// The output is JSON per RFC 8259 with these limits:
//  - no whitespace before the top-level value, at most 8 bytes of it
//    between two tokens, none after a top-level object, array, string or
//    literal; a top-level number (which could go on) ends at one whitespace
//    byte;
//  - strings: valid escapes, no raw control characters, valid UTF-8 even
//    when a token ends inside a character, no \u escapes of surrogates;
//  - numbers: at most 15 integer and 15 fraction digits and 2 exponent
//    digits; integers at most 15 digits, without fraction or exponent;
//  - values of no given type (json_object's, or a schema like {}) nest at
//    most 16 frames deep.
//
// The JSON Schema subset:
//  - type: object, array, string, number, integer, boolean, null, or a
//    list of them; with no type, properties/required/additionalProperties
//    imply an object and items/minItems/maxItems an array, else any value;
//  - properties (at most 64), required (names in properties):
//    properties are written in declared order and each optional one may be
//    left out; no other keys are written, whatever additionalProperties
//    says (false, true or {}; a schema there is refused). An object type
//    with no properties and additionalProperties not false is any object;
//  - items (one schema; a list is refused), minItems, maxItems;
//  - enum, const (the values as nlohmann::json dumps them, compactly; with
//    a type, only the values of that type);
//  - anyOf; oneOf when no two branches may match one value (different
//    types, or enums/consts with no value in common), else refused;
//  - $ref to "#/$defs/..." or "#/definitions/..." (not recursive), alone;
//  - annotations, ignored: description, title, default, $schema, format,
//    examples, $id, $comment, deprecated, readOnly, writeOnly, $defs and
//    definitions.
// Any other keyword is refused (InvalidArgument naming it and its JSON
// pointer, e.g. "json_schema at /properties/age/minimum: unsupported
// keyword \"minimum\""), never ignored.
//
// Tokens. Each token adds the bytes Tokenizer::TokenBytes gives; the first
// token of the output adds its `first` bytes (a SentencePiece decoder drops
// the first token's leading space), so the constraint expects the decoder
// to decode the generated ids apart from the prompt. Special and added
// tokens and tokens that add no bytes are never allowed: EOS stays masked,
// and the caller ends the generation at Complete().
//
// Steering. Every state knows the fewest bytes that complete the output.
// Mask(remaining) allows only tokens after which that many bytes still fit
// in the remaining tokens, one byte per token (Create made sure the
// vocabulary has one-byte tokens for every byte a close needs); when the
// budget was too small from the start, only tokens that shorten it. So a
// generation whose max_tokens is at least the shortest output's length in
// bytes always ends Complete().
#ifndef LORAD_MODEL_JSON_CONSTRAINT_H_
#define LORAD_MODEL_JSON_CONSTRAINT_H_

#include <cstdint>
#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "lorad/model/token_constraint.h"
#include "lorad/model/tokenizer.h"

namespace lorad::model {

namespace json_internal {
struct Grammar;
struct Vocabulary;
}  // namespace json_internal

class JsonConstraintFactory {
 public:
  // Built once per tokenizer (the vocabulary's bytes in two tries);
  // `tokenizer` must outlive it. FailedPrecondition when the vocabulary
  // lacks a one-byte token JSON output may need (the message names the
  // byte).
  static absl::StatusOr<std::unique_ptr<JsonConstraintFactory>> Create(
      const Tokenizer& tokenizer);

  ~JsonConstraintFactory();
  JsonConstraintFactory(const JsonConstraintFactory&) = delete;
  JsonConstraintFactory& operator=(const JsonConstraintFactory&) = delete;

  // A constraint for one request. `type` "json_object": any JSON object
  // (`schema_json` is ignored). "json_schema": `schema_json` is a JSON
  // Schema in the subset above. InvalidArgument naming what is wrong or
  // unsupported and where; for another type too. Thread-safe.
  absl::StatusOr<std::unique_ptr<TokenConstraint>> Create(
      std::string_view type, std::string_view schema_json) const;

  // The fewest tokens any output of `schema_json` takes (one per byte):
  // max_tokens below it cannot guarantee a complete output.
  absl::StatusOr<int64_t> MinTokens(std::string_view type,
                                    std::string_view schema_json) const;

 private:
  JsonConstraintFactory();
  absl::StatusOr<std::shared_ptr<const json_internal::Grammar>> GrammarFor(
      std::string_view type, std::string_view schema_json) const;

  std::unique_ptr<json_internal::Vocabulary> vocabulary_;
  std::shared_ptr<const json_internal::Grammar> any_object_;
};

}  // namespace lorad::model

#endif  // LORAD_MODEL_JSON_CONSTRAINT_H_
