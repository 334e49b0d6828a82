"""`gamgin bench kb`: ingest throughput, query latency and retrieval quality (hit@3, MRR)
for dense, BM25 and hybrid search, on a synthetic zh/en document collection.

The collection is generated (seeded) so the answers are known: Chinese PDFs about family
documents (number, expiry date, where it is kept) and English notes about contacts (phone,
address, birthday), with look-alike facts of other people as distractors. A question counts
as hit at rank r when the r-th passage contains the answer value. Writes
results/bench-kb.json under $GAMGIN_HOME (or the workspace).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

from gamgin_common.paths import results_path

ZH_OWNERS = ["我", "爸爸", "妈妈", "奶奶", "爷爷", "哥哥", "姐姐", "弟弟", "妹妹", "老婆", "老公",
             "儿子", "女儿", "外婆", "外公", "舅舅"]
ZH_ITEMS = ["护照", "驾照", "身份证", "社保卡", "医保卡", "签证", "居住证", "港澳通行证", "银行卡",
            "会员卡", "借书证", "学生证"]
ZH_PLACES = ["书房左边的抽屉", "卧室衣柜顶层的盒子", "客厅电视柜第二格", "保险箱", "床头柜",
             "办公室的文件夹", "玄关的钥匙盒", "厨房上面的柜子"]
ZH_FILLER = ["家里每周六上午大扫除，垃圾分类要按小区的规定放好。",
             "阳台上的花每三天浇一次水，夏天要在傍晚浇。",
             "冰箱里的剩菜最好两天内吃完，生熟要分开放。",
             "晚上十点以后请把音量调小，不要影响邻居休息。",
             "每个月初记得交水电费和物业费，可以在手机上交。"]
EN_NAMES = ["Alice", "Bob", "Carol", "David", "Emma", "Frank", "Grace", "Henry", "Irene",
            "Jack", "Karen", "Leo", "Mia", "Nathan", "Olivia", "Peter", "Quinn", "Rosa"]
EN_STREETS = ["Maple Street", "Oak Avenue", "River Road", "Hill Lane", "Park Drive",
              "Station Road", "Church Street", "Lake View"]
EN_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
             "September", "October", "November", "December"]
EN_FILLER = ["The recycling bin goes out on Tuesday nights and the garden waste on Fridays.",
             "Water the tomatoes every morning in summer, but never in the midday sun.",
             "The router sometimes needs a restart after a thunderstorm.",
             "Keep the spare light bulbs in the box under the stairs.",
             "The dishwasher works best with the eco program and a full load."]


def make_collection(root: Path, n_zh: int, n_en: int, seed: int = 1,
                    facts: list[dict] | None = None) -> list[dict]:
    """Write the documents; return the questions with their expected answer value (the
    "literal" set: mostly the documents' own words). ``facts`` collects what each
    document states, for ``paraphrased``."""
    from gamgin_knowledge.synthetic import write_pdf

    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    questions: list[dict] = []
    facts = facts if facts is not None else []
    pairs = [(o, i) for o in ZH_OWNERS for i in ZH_ITEMS]
    rng.shuffle(pairs)
    for d in range(n_zh):
        pages = []
        for _page in range(2):
            paras = []
            for owner, item in (pairs.pop() for _ in range(2)):
                num = f"{rng.choice('EGDKH')}{rng.randint(10000000, 99999999)}"
                y, m, day = rng.randint(2026, 2036), rng.randint(1, 12), rng.randint(1, 28)
                date = f"{y}年{m}月{day}日"
                place = rng.choice(ZH_PLACES)
                paras.append(f"{owner}的{item}号码是{num}。{owner}的{item}有效期至{date}，"
                             f"到期前要提前三个月去办理。{owner}的{item}平时放在{place}里。")
                facts += [{"lang": "zh", "kind": k, "a": a, "o": owner, "i": item}
                          for k, a in (("date", date), ("num", num), ("place", place))]
                questions += [
                    {"lang": "zh", "a": date, "q": rng.choice([
                        f"{owner}的{item}什么时候过期？", f"{owner}的{item}哪天到期？"])},
                    {"lang": "zh", "a": num, "q": rng.choice([
                        f"{owner}的{item}号码是多少？", f"{owner}的{item}号是什么？"])},
                    {"lang": "zh", "a": place, "q": rng.choice([
                        f"{owner}的{item}放在哪里了？", f"{owner}的{item}在哪儿？"])}]
            paras.append(rng.choice(ZH_FILLER))
            rng.shuffle(paras)
            pages.append("\n\n".join(paras))
        write_pdf(root / f"证件{d:02d}.pdf", pages)
    names = list(EN_NAMES)
    for d in range(n_en):
        paras = []
        for _ in range(2):
            name = names[(d * 2 + _) % len(names)] + (f" {d}" if d * 2 + _ >= len(names) else "")
            phone = f"555-{rng.randint(1000, 9999)}"
            addr = f"{rng.randint(2, 99)} {rng.choice(EN_STREETS)}"
            bday = f"{rng.randint(1, 28)} {rng.choice(EN_MONTHS)}"
            paras.append(f"{name} can be reached on {phone}. {name} lives at {addr}, "
                         f"near the bakery. {name} was born on {bday}, so send a card a week "
                         f"before.")
            facts += [{"lang": "en", "kind": k, "a": a, "n": name}
                      for k, a in (("phone", phone), ("addr", addr), ("bday", bday))]
            # half the questions are paraphrases that share few words with the text
            questions += [
                {"lang": "en", "a": phone, "q": rng.choice([
                    f"What is {name}'s phone number?", f"How do I call {name}?"])},
                {"lang": "en", "a": addr, "q": rng.choice([
                    f"Where does {name} live?", f"What is {name}'s home address?"])},
                {"lang": "en", "a": bday, "q": rng.choice([
                    f"When is {name}'s birthday?", f"What day was {name} born?"])}]
        paras.append(rng.choice(EN_FILLER))
        rng.shuffle(paras)
        suffix = ".md" if d % 2 else ".txt"
        body = "\n\n".join(paras)
        (root / f"contacts{d:02d}{suffix}").write_text(
            (f"# Contacts {d}\n\n" if suffix == ".md" else "") + body, encoding="utf-8")
    return questions


def paraphrased(facts: list[dict], seed: int = 3) -> list[dict]:
    """Questions from questions/paraphrases.yaml, written from a summary of the facts, not from
    the documents: other predicate words, and another name for the person or card where
    Mandarin has one. One question per fact."""
    import importlib.resources

    import yaml

    data = yaml.safe_load((importlib.resources.files("gamgin_knowledge") / "questions"
                           / "paraphrases.yaml").read_text(encoding="utf-8"))
    syn = data.get("zh_synonyms", {})
    rng = random.Random(seed)
    out = []
    for f in facts:
        tpl = rng.choice(data[f["lang"]][f["kind"]])
        if f["lang"] == "zh":
            o = rng.choice(syn.get(f["o"], [f["o"]]))
            i = rng.choice(syn.get(f["i"], [f["i"]]))
            q = tpl.format(o=o, i=i)
        else:
            q = tpl.format(n=f["n"])
        out.append({"lang": f["lang"], "a": f["a"], "q": q, "set": "para"})
    return out


def percentile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))] if xs else float("nan")


def _rank(passages: list, answer: str) -> int | None:
    return next((i + 1 for i, p in enumerate(passages) if answer in p.text), None)


def _score(kb, qs: list[dict], mode: str = "hybrid") -> dict:
    lat, ranks = [], []
    for q in qs:
        t = time.monotonic()
        ps = kb.search(q["q"], k=10, mode=mode)
        lat.append(time.monotonic() - t)
        ranks.append(_rank(ps, q["a"]))
    n = max(1, len(qs))
    return {"questions": len(qs), "hit@3": sum(1 for r in ranks if r and r <= 3) / n,
            "mrr": sum(1.0 / r for r in ranks if r) / n,
            "p50_ms": 1000 * statistics.median(lat) if lat else float("nan"),
            "p95_ms": 1000 * percentile(lat, 95)}


def _compare(args: argparse.Namespace, names: list[str], out: Path) -> int:
    """One child process per embedder: its RSS/PSS is the model's alone."""
    import subprocess
    import sys

    results = []
    with tempfile.TemporaryDirectory(prefix="gamgin-bench-kb-cmp-") as tmp:
        for name in names:
            j = Path(tmp) / f"{name}.json"
            cmd = [sys.executable, "-m", "gamgin_knowledge.bench", "--embedder", name,
                   "--zh-docs", str(args.zh_docs), "--en-docs", str(args.en_docs),
                   "--questions", str(args.questions), "--out", str(j)]
            if args.sweep:
                cmd.append("--sweep")
            print(f"--- {name}", flush=True)
            if subprocess.run(cmd, check=False).returncode != 0:
                print(f"embedder {name} failed: see above")
                continue
            results.append(json.loads(j.read_text()))
    print("\nembedder                            load s  +RSS MB  +PSS MB  chunks/s  "
          "query ms | hit@3 / MRR (hybrid, paraphrased)   zh          en")
    for r in results:
        para = {x["lang"]: x for x in r["retrieval"] if x["set"] == "para"
                and x["mode"] == "hybrid"}
        print(f"{r['embedder']:35s} {r['model_load_s']:6.2f} {r['rss_model_mb']:8.0f} "
              f"{r['pss_model_mb']:8.0f} {r['ingest']['chunks_per_s']:9.1f} "
              f"{r['query_embed_p50_ms']:9.1f} |{'':33s}"
              + "  ".join(f"{para[lg]['hit@3']:.2f}/{para[lg]['mrr']:.2f}"
                          for lg in ("zh", "en") if lg in para))
    out.write_text(json.dumps({"embedders": results}, indent=1, ensure_ascii=False))
    print(f"wrote {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from gamgin_knowledge.backends import EMBEDDERS, MULTILINGUAL

    ap = argparse.ArgumentParser(prog="gamgin bench kb", description=__doc__.split("\n")[0])
    ap.add_argument("--zh-docs", type=int, default=16, help="Chinese PDFs (2 pages, 4 facts)")
    ap.add_argument("--en-docs", type=int, default=16, help="English notes (2 contacts)")
    ap.add_argument("--questions", type=int, default=60, help="per language and set (sampled)")
    ap.add_argument("--embedder", default="minilm",
                    help=f"one of {', '.join(EMBEDDERS)}, or a comma list to compare them "
                    "(each in its own process)")
    ap.add_argument("--embedding-model", default="")
    ap.add_argument("--sweep", action="store_true",
                    help="also try RRF dense weights for Chinese queries")
    ap.add_argument("--chunks", default="",
                    help="scale bench instead: comma list of sizes, e.g. 1000,10000,100000 "
                    "(synthetic chunks and vectors; writes results/bench-kb-scale.json)")
    ap.add_argument("--store", default="faiss,pgvector", help="stores for --chunks")
    ap.add_argument("--out", default="", help="JSON path (default results/bench-kb.json)")
    args = ap.parse_args(argv)
    if args.chunks:
        from gamgin_knowledge.bench_scale import run

        out = results_path("bench-kb-scale.json", args.out)
        run([int(x) for x in args.chunks.split(",")],
            [s.strip() for s in args.store.split(",") if s.strip()], out=out)
        return 0
    out = results_path("bench-kb.json", args.out)  # fails now, not after the run
    names = [n.strip() for n in args.embedder.split(",") if n.strip()]
    if len(names) > 1:
        return _compare(args, names, out)

    import psutil

    from gamgin_knowledge.backends import embed_query, make_embedder
    from gamgin_knowledge.core import RRF_K, KnowledgeBase
    from gamgin_knowledge.retriever import KnowledgeRetriever

    proc = psutil.Process()
    rss0, pss0 = proc.memory_info().rss, proc.memory_full_info().pss
    multilingual = args.embedder in MULTILINGUAL
    with tempfile.TemporaryDirectory(prefix="gamgin-bench-kb-") as tmp:
        docs = Path(tmp) / "docs"
        facts: list[dict] = []
        questions = make_collection(docs, args.zh_docs, args.en_docs, facts=facts)
        rng = random.Random(2)
        sample = []
        for lang in ("zh", "en"):
            qs = [dict(q, set="literal") for q in questions if q["lang"] == lang]
            sample += rng.sample(qs, min(args.questions, len(qs)))
            qs = [q for q in paraphrased(facts) if q["lang"] == lang]
            sample += rng.sample(qs, min(args.questions, len(qs)))
        nbytes = sum(p.stat().st_size for p in docs.iterdir())
        t0 = time.monotonic()
        emb = make_embedder(args.embedder, args.embedding_model)
        emb.embed(["warm up"])
        load_s = time.monotonic() - t0
        rss_model, pss_model = proc.memory_info().rss, proc.memory_full_info().pss
        kb = KnowledgeBase(Path(tmp) / "idx", embedder=emb,
                           dense_weight={"en": 1.0, "zh": 1.0 if multilingual else 0.0})
        report = kb.add([docs])
        pages = sum(max(f.pages, 1) for f in report.files if f.status == "added")
        chunks = sum(f.chunks for f in report.files if f.status == "added")
        t1 = time.monotonic()
        again = kb.add([docs])
        reingest_s = time.monotonic() - t1
        r = KnowledgeRetriever(index_dir=str(Path(tmp) / "idx"), embedder=args.embedder,
                               embedding_model=args.embedding_model, builtin_jokes=False,
                               dense_weight_zh=kb.dense_weight["zh"], kb=kb)
        kb.search("warm up", 3)
        q_lat = []
        for q in sample[:40]:
            t = time.monotonic()
            embed_query(emb, [q["q"]])
            q_lat.append(time.monotonic() - t)
        sweep = []
        if args.sweep:  # RRF weight of dense ranks for Chinese queries
            keep = kb.dense_weight.get("zh", 0.0)
            for w in (0.0, 0.25, 0.5, 1.0, 2.0):
                kb.dense_weight["zh"] = w
                for set_ in ("literal", "para"):
                    sc = _score(kb, [q for q in sample if q["lang"] == "zh"
                                     and q["set"] == set_])
                    sweep.append({"dense_weight_zh": w, "set": set_, "hit@3": sc["hit@3"],
                                  "mrr": sc["mrr"]})
            kb.dense_weight["zh"] = keep
        rows = []
        for set_ in ("literal", "para"):
            for mode in ("dense", "bm25", "hybrid"):
                for lang in ("zh", "en"):
                    qs = [q for q in sample if q["lang"] == lang and q["set"] == set_]
                    rows.append({"set": set_, "mode": mode, "lang": lang,
                                 **_score(kb, qs, mode)})
        answers = []
        for set_ in ("literal", "para"):
            for lang in ("zh", "en"):
                qs = [q for q in sample if q["lang"] == lang and q["set"] == set_]
                lat, ok, answered = [], 0, 0
                for q in qs:
                    t = time.monotonic()
                    said = r.reply(q["q"], lang)
                    lat.append(time.monotonic() - t)
                    answered += said is not None
                    ok += bool(said and q["a"] in said)
                answers.append({"set": set_, "lang": lang, "questions": len(qs),
                                "answered": answered / len(qs), "correct": ok / len(qs),
                                "p50_ms": 1000 * statistics.median(lat),
                                "p95_ms": 1000 * percentile(lat, 95)})
    ingest_s = report.seconds
    result = {
        "embedder": emb.name, "model_load_s": load_s,
        "rss_model_mb": (rss_model - rss0) / 1e6, "pss_model_mb": (pss_model - pss0) / 1e6,
        "rss_total_mb": proc.memory_info().rss / 1e6,
        "query_embed_p50_ms": 1000 * statistics.median(q_lat),
        "ingest": {"files": report.count("added"), "pages": pages, "chunks": chunks,
                   "bytes": nbytes, "seconds": ingest_s, "pages_per_s": pages / ingest_s,
                   "mb_per_s": nbytes / 1e6 / ingest_s, "chunks_per_s": chunks / ingest_s,
                   "reingest_unchanged_s": reingest_s,
                   "reingest_unchanged": again.count("unchanged")},
        "dense_weight": dict(kb.dense_weight), "zh_dense_weight_sweep": sweep,
        "retrieval": rows, "extractive": answers, "cpu_count": os.cpu_count(),
        "load_avg": os.getloadavg()[0],
    }
    ing = result["ingest"]
    print(f"embedder {emb.name}: load {load_s:.2f} s, +{result['rss_model_mb']:.0f} MB RSS, "
          f"+{result['pss_model_mb']:.0f} MB PSS, query embedding "
          f"{result['query_embed_p50_ms']:.1f} ms (p50)")
    print(f"ingest: {ing['files']} files, {pages} pages, {chunks} chunks, "
          f"{nbytes / 1e3:.0f} kB in {ingest_s:.1f} s = {ing['pages_per_s']:.1f} pages/s, "
          f"{ing['mb_per_s']:.3f} MB/s, {ing['chunks_per_s']:.1f} chunks/s; "
          f"re-ingest unchanged {reingest_s:.2f} s")
    print(f"{'set':8s} {'mode':7s} {'lang':4s} {'n':>4s} {'hit@3':>6s} {'MRR':>6s} "
          f"{'p50 ms':>7s} {'p95 ms':>7s}")
    for row in rows:
        print(f"{row['set']:8s} {row['mode']:7s} {row['lang']:4s} {row['questions']:4d} "
              f"{row['hit@3']:6.2f} {row['mrr']:6.2f} {row['p50_ms']:7.1f} "
              f"{row['p95_ms']:7.1f}")
    print(f"hybrid = RRF(k={RRF_K}) of BM25 and dense ranks, dense weight per language "
          f"{kb.dense_weight}")
    for sw in sweep:
        print(f"  zh dense weight {sw['dense_weight_zh']:4.2f} {sw['set']:8s}: "
              f"hit@3 {sw['hit@3']:.2f} MRR {sw['mrr']:.2f}")
    print(f"{'extractive answer':18s} {'n':>4s} {'answered':>8s} {'correct':>8s} {'p50 ms':>7s}")
    for a in answers:
        print(f"{a['set'] + ' ' + a['lang']:18s} {a['questions']:4d} {a['answered']:8.2f} "
              f"{a['correct']:8.2f} {a['p50_ms']:7.1f}")
    print(f"(load average {result['load_avg']:.1f} on {os.cpu_count()} cores: "
          "compare ratios, not absolute times)")
    out.write_text(json.dumps(result, indent=1, ensure_ascii=False))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
