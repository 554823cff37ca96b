"""Writes the small synthetic NER data sets data/ner_en/ and data/ner_zh/.

Every sentence is a hand-written template whose slots are filled with hand-written (mostly
invented) names of people, places and organisations; no downloaded data is used. The output is
deterministic for a given --seed:

  data/ner_en/{train,dev,test}.txt  English, CoNLL layout (`word tag`, -DOCSTART- between
                                    documents), BIO tags over PER, LOC, ORG and MISC
  data/ner_zh/{train,dev,test}.txt  Chinese, one character per line (`字 tag`), BIO tags over
                                    PER, LOC and ORG

About one sentence in six joins several clauses, so that it runs past 64 WordPieces and
exercises the windowing of long sentences. A fifth of each entity list is held out of the
training split (it fills dev and test slots only half of the time), so dev and test measure
some generalisation to unseen names.

  python tools/make_ner_data.py [--output_dir data] [--seed 12345]
"""

from __future__ import annotations

import argparse
import os
import random
import re

SPLIT_SIZES = {"train": 500, "dev": 150, "test": 150}
LONG_SENTENCE_RATE = 1 / 6

# ---------------------------------------------------------------------------------------------
# English

EN_FIRST_NAMES = (
    "Anna Marek Priya Tomas Elena Kwame Sofia Jonas Mei Rafael Ingrid Omar Lucia Henrik Aiko "
    "Daniel Fatima Pavel Grace Mateo Leila Victor Nora Samuel Yara Felix Hana Diego Clara Amir "
    "Olga Bruno Esther Kenji Rosa Tariq Helen Luis Freya Ivan"
).split()
EN_SURNAMES = (
    "Halvorsen Okafor Brandt Castellano Nakamura Virtanen Moreau Kowalski Abernathy Delgado "
    "Lindqvist Mensah Petrova Whitcombe Rahman Fischer Alvarez Thorne Kuznetsov Oyelaran Baptiste "
    "Marsh Sandoval Quill Eriksen Montague Haddad Brennan Vasquez Holloway"
).split()
EN_PLACES = (
    "Brussels", "Lisbon", "Nairobi", "Osaka", "Toronto", "Valparaiso", "Krakow", "Edinburgh",
    "Cape Town", "New Delhi", "Buenos Aires", "San Francisco", "Rotterdam", "Reykjavik",
    "Marrakesh", "Helsinki", "Hamburg", "Quebec", "Dublin", "Auckland", "Portugal", "Kenya",
    "Brazil", "Norway", "Vietnam", "Scotland", "Chile", "Rhineland", "Lake Geneva",
    "Patagonia", "Northbridge", "Port Alden", "East Marlow", "Vellmar County", "Silverton",
    "Harrow Bay", "Kessel Island", "Dunmore", "Ashfield", "Lower Wenden",
)  # fmt: skip
EN_ORGANISATIONS = (
    "Northwind Bank", "Helix Pharmaceuticals", "Ministry of Transport", "Bluegate Systems",
    "University of Ashfield", "Corvane Motors", "Port Alden Harbour Authority", "Aldmere Foods",
    "Tessaract Labs", "National Weather Service", "Quarry Lane Studios", "Orbis Airlines",
    "Red Kite Foundation", "Marlow United", "Central Statistics Office", "Vantage Group",
    "Greyfield Insurance", "Dunmore City Council", "Lumen Energy", "Solace Health",
    "Port Alden Rowing Club", "Kestrel Media", "Brightwater Trust", "Ferro Steelworks",
    "Institute of Coastal Studies", "Nimbus Telecom", "Oakline Railways", "Pellham Press",
    "Silverton Chamber of Commerce", "Arcwell Robotics",
)  # fmt: skip
# MISC comes in two slots: nationalities ({NAT}) and named events ({EVENT}).
EN_NATIONALITIES = (
    "German", "Brazilian", "Japanese", "Kenyan", "Norwegian", "French", "Chilean", "Scottish",
    "Portuguese", "English", "Vietnamese", "Dutch", "Icelandic", "Canadian", "Polish",
)  # fmt: skip
EN_EVENTS = (
    "Winter Games", "Harvest Festival", "Coastal Marathon", "Aldmere Cup", "Lantern Fair",
    "Northbridge Open", "Silverton Regatta", "Spring Book Fair", "Harrow Bay Jazz Week",
    "Vellmar Rally",
)  # fmt: skip

# {PER}, {LOC}, {ORG}, {NAT} and {EVENT} are entity slots; the rest is split on spaces.
EN_TEMPLATES = (
    "{PER} , the chief executive of {ORG} , said on Tuesday that the company would open a new "
    "office in {LOC} .",
    "{ORG} reported higher profits for the third quarter .",
    "Police in {LOC} said two people were injured .",
    "{PER} scored twice as {ORG} beat {ORG} 3-1 in {LOC} .",
    "The {NAT} delegation arrived in {LOC} late on Sunday .",
    "{PER} won the {EVENT} title for a second year .",
    "Shares of {ORG} fell 4 percent after {PER} resigned .",
    "{PER} told reporters in {LOC} that talks with {ORG} had stalled .",
    "Heavy rain closed roads across {LOC} .",
    "{ORG} and {ORG} agreed to merge their {LOC} operations .",
    "A spokesman for {ORG} declined to comment .",
    "{PER} , who grew up in {LOC} , joined {ORG} in 2009 .",
    "The {NAT} team trained in {LOC} before flying to {LOC} .",
    "{PER} met {PER} at the {ORG} headquarters .",
    "Organisers expect 20,000 visitors at the {EVENT} in {LOC} this year .",
    "{ORG} hired {PER} as its new head of research .",
    "Thank you , {PER} .",
    "{LOC} beat {LOC} 2-0 .",
    "The report by {ORG} was published on Monday .",
    "{PER} , a {NAT} engineer , has lived in {LOC} since 1998 .",
    "Inflation in {LOC} rose to 3.2 percent in May , {ORG} said .",
    "{PER} denied the allegations .",
    "Flights between {LOC} and {LOC} were cancelled because of fog .",
    "{ORG} said it would cut 300 jobs at its plant near {LOC} .",
    "The museum in {LOC} will show works by {PER} until March .",
    "Nobody was hurt .",
    "{PER} and {PER} will lead the {NAT} expedition to the {EVENT} .",
    "According to {ORG} , exports from {LOC} doubled last year .",
)
EN_CONNECTORS = (
    "; meanwhile ,", ", while", "; in a separate statement ,", ", and", "; earlier ,",
    "; at the same time ,",
)  # fmt: skip

# ---------------------------------------------------------------------------------------------
# Chinese

ZH_SURNAMES = "王李张刘陈杨黄赵周吴徐孙马朱胡郭何林罗高梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭"
ZH_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国志文玉兰晓红海燕宇浩然子涵思远"
ZH_PLACES = (
    "北京", "上海", "广州", "深圳", "杭州", "南京", "成都", "武汉", "西安", "重庆", "天津",
    "苏州", "长沙", "青岛", "厦门", "昆明", "哈尔滨", "拉萨", "乌鲁木齐", "桂林", "黄山",
    "云南省", "浙江省", "四川省", "长江", "珠江三角洲", "海南岛", "青海湖", "东湖区", "南山镇",
    "西江县", "白云村", "清河市", "临江新区", "松原县",
)  # fmt: skip
ZH_ORGANISATIONS = (
    "星河科技公司", "东方银行", "清河大学", "人民医院", "华南理工学院", "长风汽车集团",
    "绿野食品有限公司", "国家气象局", "市教育局", "蓝海航空", "天成证券", "明德中学",
    "新源能源公司", "江南日报社", "北辰研究院", "金桥物流", "市人民政府", "晨光出版社",
    "远航足球俱乐部", "安康保险公司", "中华书局", "宏图建筑公司", "青云软件", "海天电视台",
    "省环保厅",
)  # fmt: skip
ZH_TEMPLATES = (
    "{PER}昨天在{LOC}参加了{ORG}举办的会议。",
    "{ORG}宣布将在{LOC}建设新的研发中心。",
    "{PER}是{ORG}的工程师。",
    "今年{LOC}的游客人数明显增加。",
    "{PER}和{PER}一起前往{LOC}考察。",
    "据{ORG}消息，{LOC}明天有大雨。",
    "{ORG}与{ORG}签署了合作协议。",
    "{PER}出生于{LOC}，后来在{ORG}工作了十年。",
    "记者从{ORG}获悉，{LOC}地铁三号线将于年底通车。",
    "{PER}表示，{ORG}会继续支持{LOC}的发展。",
    "谢谢大家。",
    "{LOC}队以二比一战胜了{LOC}队。",
    "{PER}在{ORG}的比赛中获得了第一名。",
    "{ORG}的专家来到{LOC}指导工作。",
    "去年{PER}从{LOC}搬到了{LOC}。",
    "{ORG}发布了2024年的年度报告。",
    "{PER}说这次活动非常成功。",
    "{LOC}和{LOC}之间的高铁已经开通。",
    "{ORG}招聘了五十名新员工。",
    "{PER}担任{ORG}院长。",
    "大家都很高兴。",
    "{PER}参观了{LOC}的博物馆。",
)
ZH_CONNECTORS = ("同时，", "此外，", "另外，", "与此同时，", "而且")

SLOT = re.compile(r"\{(PER|LOC|ORG|NAT|EVENT)\}")
# The entity type each slot is tagged with.
SLOT_TYPES = {"PER": "PER", "LOC": "LOC", "ORG": "ORG", "NAT": "MISC", "EVENT": "MISC"}


class EntityLists:
    """Each slot's names, split into those training may use and those held out of it."""

    def __init__(self, lists: dict[str, list[str]], rng: random.Random) -> None:
        self.seen: dict[str, list[str]] = {}
        self.held_out: dict[str, list[str]] = {}
        for slot, names in lists.items():
            names = list(names)
            rng.shuffle(names)
            cut = max(1, len(names) // 5)
            self.held_out[slot], self.seen[slot] = names[:cut], names[cut:]

    def pick(self, slot: str, split: str, rng: random.Random) -> str:
        if split != "train" and rng.random() < 0.5:
            return rng.choice(self.held_out[slot])
        return rng.choice(self.seen[slot])


def _english_person(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.6:
        return f"{rng.choice(EN_FIRST_NAMES)} {rng.choice(EN_SURNAMES)}"
    return rng.choice(EN_SURNAMES) if roll < 0.85 else rng.choice(EN_FIRST_NAMES)


def _chinese_person(rng: random.Random) -> str:
    given = "".join(rng.choice(ZH_GIVEN) for _ in range(rng.choice((1, 2, 2))))
    return rng.choice(ZH_SURNAMES) + given


def _fill(template: str, entities: EntityLists, person, split: str, rng: random.Random):
    """The template as (text, entity type or None) pieces, slots filled."""
    pieces: list[tuple[str, str | None]] = []
    position = 0
    for match in SLOT.finditer(template):
        pieces.append((template[position : match.start()], None))
        slot = match.group(1)
        name = person(rng) if slot == "PER" else entities.pick(slot, split, rng)
        pieces.append((name, SLOT_TYPES[slot]))
        position = match.end()
    pieces.append((template[position:], None))
    return pieces


def _sentence_pieces(templates, connectors, entities, person, split, rng, joiner):
    count = rng.choice((3, 4, 5)) if rng.random() < LONG_SENTENCE_RATE else 1
    pieces: list[tuple[str, str | None]] = []
    for index in range(count):
        template = rng.choice(templates)
        if index < count - 1:
            # Drop the clause's final full stop and join it to the next clause.
            template = template.rstrip(" .。") + joiner + rng.choice(connectors) + joiner
        pieces += _fill(template, entities, person, split, rng)
    return pieces


def _tagged_units(pieces, split_units) -> list[tuple[str, str]]:
    """(word or character, BIO tag) pairs of the filled pieces."""
    units = []
    for text, kind in pieces:
        for index, unit in enumerate(split_units(text)):
            units.append((unit, "O" if kind is None else f"{'B' if index == 0 else 'I'}-{kind}"))
    return units


def _english_units(text: str) -> list[str]:
    return text.split()


def _chinese_units(text: str) -> list[str]:
    return [char for char in text if not char.isspace()]


def make_splits(language: str, seed: int) -> dict[str, list[list[tuple[str, str]]]]:
    """Sentences for each split: lists of (unit, tag); no sentence appears twice anywhere."""
    rng = random.Random(f"{language}-{seed}")
    if language == "en":
        lists = {
            "LOC": list(EN_PLACES),
            "ORG": list(EN_ORGANISATIONS),
            "NAT": list(EN_NATIONALITIES),
            "EVENT": list(EN_EVENTS),
        }
        spec = (EN_TEMPLATES, EN_CONNECTORS, _english_person, " ", _english_units)
    else:
        lists = {"LOC": list(ZH_PLACES), "ORG": list(ZH_ORGANISATIONS)}
        spec = (ZH_TEMPLATES, ZH_CONNECTORS, _chinese_person, "", _chinese_units)
    templates, connectors, person, joiner, split_units = spec
    entities = EntityLists(lists, rng)
    seen: set[tuple[tuple[str, str], ...]] = set()
    splits = {}
    for split, size in SPLIT_SIZES.items():
        sentences = []
        while len(sentences) < size:
            pieces = _sentence_pieces(templates, connectors, entities, person, split, rng, joiner)
            units = tuple(_tagged_units(pieces, split_units))
            if units not in seen:
                seen.add(units)
                sentences.append(list(units))
        splits[split] = sentences
    return splits


def conll_text(sentences, rng: random.Random | None) -> str:
    """CoNLL lines; with `rng`, sentences are grouped into documents of 3 to 8 sentences,
    each opened by a -DOCSTART- line."""
    lines: list[str] = []
    remaining = 0
    for sentence in sentences:
        if rng is not None and remaining == 0:
            lines += ["-DOCSTART- O", ""]
            remaining = rng.randint(3, 8)
        lines += [f"{unit} {tag}" for unit, tag in sentence] + [""]
        remaining -= 1
    return "\n".join(lines)


def write_data(output_dir: str, seed: int) -> None:
    for language in ("en", "zh"):
        directory = os.path.join(output_dir, f"ner_{language}")
        os.makedirs(directory, exist_ok=True)
        documents_rng = random.Random(f"documents-{seed}") if language == "en" else None
        for split, sentences in make_splits(language, seed).items():
            path = os.path.join(directory, f"{split}.txt")
            with open(path, "w", encoding="utf-8", newline="\n") as writer:
                writer.write(conll_text(sentences, documents_rng))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--output_dir", default=os.path.join(os.path.dirname(__file__), "..", "data")
    )
    parser.add_argument("--seed", type=int, default=12345)
    args = parser.parse_args()
    write_data(os.path.normpath(args.output_dir), args.seed)


if __name__ == "__main__":
    main()
