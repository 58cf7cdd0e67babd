"""The channel loader: every problem as file:line: key: what, all of them at once."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from conduit.core.errors import ConfigError
from conduit.engine.components import default_registry
from conduit.engine.loader import channel_files, load_channel, load_channels

GOOD = """\
name: good
source: {type: mllp, host: 127.0.0.1, port: 2575}
destinations:
  - {name: archive, type: file, path: "out/{{ msg['MSH-10'] }}.hl7"}
"""


def write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(path: Path, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_channel(path, env=env or {})
    return caught.value.problems


def test_a_good_channel_loads(tmp_path: Path) -> None:
    channel = load_channel(write(tmp_path, GOOD), env={})
    assert channel.name == "good"
    assert channel.destinations[0].name == "archive"
    assert channel.path == str(tmp_path / "c.yaml")


def test_unknown_key_with_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        name: bad
        source: {type: mllp, port: 2575}
        destinations:
          - name: archive
            type: file
            pth: out/x.hl7
        """)
    assert problems(path) == [
        f"{path}:4: destinations[0].path: is required but missing",
        f"{path}:6: destinations[0].pth: unknown key (did you mean 'path'?)",
    ]


def test_unknown_top_level_key_and_unknown_type(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        name: bad
        descripton: typo
        source: {type: mlp, port: 2575}
        destinations: [{name: a, type: file, path: x}]
        """)
    assert problems(path) == [
        f"{path}:2: descripton: unknown key (did you mean 'description'?)",
        f"{path}:3: source.type: unknown source type 'mlp' (did you mean 'mllp'?)",
    ]


def test_wrong_type(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        name: bad
        source:
          type: mllp
          port: twenty
        destinations: [{name: a, type: file, path: x}]
        """)
    (problem,) = problems(path)
    assert problem.startswith(f"{path}:4: source.port: Input should be a valid integer")


def test_bad_path_bad_regex_and_bad_condition(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        name: bad
        source: {type: mllp, port: 2575}
        filter:
          any:
            - {field: MSH9, equals: ADT}
            - {field: MSH-9.2, matches: "(A0"}
            - {field: MSH-9.2, equals: A01, in: [A04]}
            - {field: MSH-9.2, equls: A01}
        destinations:
          - {name: a, type: file, path: x, when: {field: PID-3.x, exists: true}}
        """)
    found = problems(path)
    assert found[0] == (f"{path}:5: filter.any[0].field: invalid HL7 path 'MSH9': expected "
                        "SEG[n]-field[rep].component.subcomponent, e.g. PID-5.1, OBX[2]-5, "
                        "PID-3[2].4.1")
    assert found[1].startswith(f"{path}:6: filter.any[1].matches: not a valid regular "
                               "expression: missing )")
    assert found[2] == (f"{path}:7: filter.any[2]: give one operator per condition "
                        "(found: equals, in); combine several with all: or any:")
    assert found[3] == f"{path}:8: filter.any[3].equls: unknown key (did you mean 'equals'?)"
    assert found[4].startswith(f"{path}:10: destinations[0].when.field: invalid HL7 path")
    assert len(found) == 5


def test_steps(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        name: bad
        source: {type: mllp, port: 2575}
        transform:
          - sett: {field: PID-5, value: x}
          - set: {field: PID-5, value: x}
            copy: {from: PID-3, to: PID-2}
          - set: {field: PID-5, valeu: x}
          - template:
              body: |
                MSH|^~\\&|X
                PID|{{ msg['PID-3'] }
        destinations: [{name: a, type: file, path: x}]
        """)
    assert problems(path) == [
        f"{path}:4: transform[0].sett: unknown step 'sett' (did you mean 'set'?)",
        f"{path}:5: transform[1]: a step has exactly one key naming its kind (found: set, copy); "
        "put each step in its own list item",
        f"{path}:7: transform[2].set.value: is required but missing",
        f"{path}:7: transform[2].set.valeu: unknown key (did you mean 'value'?)",
        f"{path}:11: transform[3].template.body: template line 2: syntax error: unexpected '}}'",
    ]


def test_missing_environment_variable_names_line_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        name: env
        source: {type: mllp, port: 2575}
        destinations:
          - {name: a, type: file, path: "${OUT_DIR}/x.hl7"}
        """)
    assert problems(path) == [
        f"{path}:4: destinations[0].path: environment variable OUT_DIR is not set "
        "(or give a default: ${OUT_DIR:-value})"]


def test_environment_values_defaults_and_escapes(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        name: env
        description: "costs $${PRICE}"
        source: {type: mllp, port: "${PORT}"}
        destinations:
          - {name: a, type: file, path: "${OUT_DIR:-data}/${SUB:-x}/y.hl7"}
        """)
    channel = load_channel(path, env={"PORT": "2600", "SUB": "in"})
    assert channel.source.port == 2600  # type: ignore[attr-defined]
    assert channel.description == "costs ${PRICE}"
    assert channel.destinations[0].path == "data/in/y.hl7"  # type: ignore[attr-defined]


def test_bad_variable_reference(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("127.0.0.1", "\"${not valid}\""))
    (problem,) = problems(path)
    assert problem.startswith(f"{path}:2: source.host: '${{not valid}}' is not a variable")


def test_yaml_syntax_error_has_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "name: x\nsource: {type: mllp\ndestinations: []\n")
    (problem,) = problems(path)
    assert problem.startswith(f"{path}:3: YAML syntax:")


def test_duplicate_keys_are_errors(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + "name: again\n")
    assert problems(path) == [f"{path}:5: name: duplicate key (first given on line 1)"]


def test_empty_and_non_mapping_files(tmp_path: Path) -> None:
    empty = write(tmp_path, "# nothing\n", "empty.yaml")
    assert problems(empty) == [
        f"{empty}:1: the file is empty: expected name:, source:, destinations:"]
    listed = write(tmp_path, "- a\n", "list.yaml")
    assert problems(listed) == [f"{listed}:1: expected a mapping: name:, source:, destinations:"]


def test_destination_names_are_unique_and_channel_names_well_formed(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        name: Bad Name
        source: {type: mllp, port: 2575}
        destinations:
          - {name: a, type: file, path: x}
          - {name: a, type: file, path: y}
        """)
    found = problems(path)
    assert found[0].startswith(f"{path}:1: name: 'Bad Name' is not a channel name")
    assert found[1] == f"{path}:3: destinations: destination name 'a' is used twice"


def test_missing_type_and_typo_of_type(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        name: t
        source: {port: 2575}
        destinations:
          - {name: a, typ: file, path: x}
        """)
    kinds = ", ".join(sorted(default_registry().sources))
    assert problems(path) == [
        f"{path}:2: source.type: is required; one of: {kinds}",
        f"{path}:4: destinations[0].typ: unknown key (did you mean 'type'?)",
    ]


def test_directories_skip_test_files_and_clashes_are_reported(tmp_path: Path) -> None:
    write(tmp_path, GOOD, "a.yaml")
    write(tmp_path, GOOD, "b.yml")
    write(tmp_path, "tests: []\n", "a.test.yaml")
    assert channel_files([tmp_path]) == [tmp_path / "a.yaml", tmp_path / "b.yml"]
    with pytest.raises(ConfigError) as caught:
        load_channels([tmp_path], env={})
    assert caught.value.problems == [
        f"{tmp_path / 'b.yml'}:1: name: channel name 'good' is also used by {tmp_path / 'a.yaml'}",
        f"{tmp_path / 'b.yml'}:2: source.port: port 2575 is also used by channel 'good' "
        f"({tmp_path / 'a.yaml'})",
    ]


def test_problems_from_several_files_are_all_reported(tmp_path: Path) -> None:
    one = write(tmp_path, GOOD.replace("good", "one").replace("mllp", "mlp"), "one.yaml")
    two = write(tmp_path, GOOD.replace("good", "two").replace("2575", "2576") + "x: 1\n",
                "two.yaml")
    with pytest.raises(ConfigError) as caught:
        load_channels([one, two, tmp_path / "missing.yaml"], env={})
    assert [p.split(":")[0] for p in caught.value.problems] == [
        str(tmp_path / "missing.yaml"), str(one), str(two)]


def test_load_channels_returns_channels_in_order(tmp_path: Path) -> None:
    write(tmp_path, GOOD.replace("good", "b-chan"), "b.yaml")
    write(tmp_path, GOOD.replace("good", "a-chan").replace("2575", "2577"), "a.yaml")
    assert [c.name for c in load_channels([tmp_path], env={})] == ["a-chan", "b-chan"]


def test_unknown_filters_and_tests_in_templates_are_one_line_each(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        name: bad
        source: {type: mllp, port: 2575}
        transform:
          - set: {field: PID-5.1, value: "{{ msg['PID-5.1'] | uper }}"}
          - template:
              body: |
                MSH|^~\\&|X
                {% if msg['PID-8'] is femail %}F{% endif %}
        destinations:
          - name: a
            type: file
            path: "out/{{ msg['MSH-10'] | lowr }}.hl7"
          - name: b
            type: http
            url: http://127.0.0.1:1/x
            headers: {X-Id: "{{ id | nope }}"}
          - name: c
            type: mllp
            host: 127.0.0.1
            port: 1
            partition_by: "{{ msg['PID-3.1'] | nope }}"
        """)
    assert problems(path) == [
        f"{path}:4: transform[0].set.value: template line 1: no filter named 'uper' "
        "(did you mean 'upper'?)",
        f"{path}:8: transform[1].template.body: template line 2: no test named 'femail'",
        f"{path}:12: destinations[0].path: template line 1: no filter named 'lowr' "
        "(did you mean 'lower'?)",
        f"{path}:16: destinations[1].headers.X-Id: template line 1: no filter named 'nope'",
        f"{path}:21: destinations[2].partition_by: template line 1: no filter named 'nope'",
    ]


def test_a_broken_destination_path_template_is_refused_at_load(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        name: bad
        source: {type: mllp, port: 2575}
        destinations:
          - {name: a, type: file, path: "out/{{ msg['MSH-10'] }.hl7"}
          - {name: b, type: file, path: "out/{{ msg['MSH10'] }}.hl7"}
        """)
    assert problems(path) == [
        f"{path}:4: destinations[0].path: template line 1: syntax error: unexpected '}}'",
        f"{path}:5: destinations[1].path: template line 1: invalid HL7 path 'MSH10': expected "
        "SEG[n]-field[rep].component.subcomponent, e.g. PID-5.1, OBX[2]-5, PID-3[2].4.1",
    ]


def test_a_filter_on_the_wrong_kind_of_field_has_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        name: bad
        source: {type: fhir, port: 2575}
        filter:
          all:
            - {json: resourceType, equals: Observation}
            - {field: OBX-3.1, equals: "29463-7"}
        destinations:
          - name: a
            type: file
            path: x
            when: {xpath: /a, exists: true}
        """)
    assert problems(path) == [
        f"{path}:6: filter.all[1].field: 'field' reads an HL7 v2 field; this channel's "
        "data_type is fhir: read it with 'json:' (JMESPath)",
        f"{path}:11: destinations[0].when.xpath: destination a: 'xpath' reads XML; this "
        "channel's data_type is fhir: read it with 'json:' (JMESPath)",
    ]


def test_json_and_xpath_conditions_report_like_field_ones(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        name: bad
        source: {type: http, port: 2575}
        filter:
          any:
            - {json: status}
            - {json: "status[", equals: final}
            - {jsn: status, equals: final}
        destinations: [{name: a, type: file, path: x}]
        """)
    found = problems(path)
    assert found[0] == (f"{path}:5: filter.any[0]: a test needs one operator: equals, in, "
                        "matches, exists")
    assert found[1].startswith(f"{path}:6: filter.any[1].json: not a valid JMESPath expression")
    assert found[2] == f"{path}:7: filter.any[2].jsn: unknown key (did you mean 'json'?)"
    assert len(found) == 3
