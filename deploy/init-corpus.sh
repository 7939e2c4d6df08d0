#!/bin/sh
# Seeds the shared bare corpus remote once from the example corpus baked into the image.
set -eu
if [ ! -d /remote/corpus.git/objects ]; then
  git init -q --bare -b main /remote/corpus.git
  work=$(mktemp -d)
  git -C "$work" init -q -b main
  cp -r /app/corpus-example "$work/corpus"
  git -C "$work" add corpus
  git -C "$work" -c user.name=evalbot -c user.email=evalbot@localhost commit -q -m "Example corpus"
  git -C "$work" push -q /remote/corpus.git main
fi
for replica in bot1 bot2; do
  [ -d "/data/$replica/.git" ] || git clone -q /remote/corpus.git "/data/$replica"
done
