#!/usr/bin/env bash
# Re-create tools/slides_vendor/: the browser assets of the nbconvert reveal.js decks, from
# npm, pruned to what the decks load, so that slides build and show offline.
#   reveal.js@4.0.2 (the version nbconvert's reveal template targets), requirejs, jquery@2,
#   mathjax@2.7.7 (the template calls the MathJax 2 API; CommonHTML output, TeX woff fonts).
set -euo pipefail
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack -q reveal.js@4.0.2 requirejs@2.3.7 jquery@2.2.4 mathjax@2.7.7 >/dev/null)
for tarball in "$work"/*.tgz; do
  name=$(basename "$tarball" .tgz); mkdir -p "$work/$name"; tar xzf "$tarball" -C "$work/$name"
done
out=slides_vendor
rm -rf "$out"; mkdir -p "$out"/reveal.js/dist/theme "$out"/reveal.js/plugin "$out"/mathjax/fonts/HTML-CSS/TeX "$out"/mathjax/jax
r="$work/reveal.js-4.0.2/package"
cp "$r"/LICENSE "$r"/dist/reveal.js "$r"/dist/reveal.css "$out"/reveal.js/
mv "$out"/reveal.js/reveal.js "$out"/reveal.js/reveal.css "$out"/reveal.js/dist/
# the theme @imports Google fonts; offline the browser falls back to its own sans-serif
grep -v "@import url(https" "$r"/dist/theme/simple.css > "$out"/reveal.js/dist/theme/simple.css
cp -r "$r"/plugin/notes "$out"/reveal.js/plugin/
cp "$work"/requirejs-2.3.7/package/require.js "$out"/
cp "$work"/jquery-2.2.4/package/dist/jquery.min.js "$out"/
m="$work/mathjax-2.7.7/package"
cp "$m"/LICENSE "$m"/MathJax.js "$out"/mathjax/
mkdir -p "$out"/mathjax/config && cp "$m"/config/TeX-AMS_CHTML-full.js "$m"/config/Safe.js "$out"/mathjax/config/
cp -r "$m"/extensions "$out"/mathjax/
rm -rf "$out"/mathjax/extensions/HTML-CSS "$out"/mathjax/extensions/a11y
cp -r "$m"/jax/input "$m"/jax/element "$out"/mathjax/jax/
rm -rf "$out"/mathjax/jax/input/AsciiMath "$out"/mathjax/jax/input/MathML
mkdir -p "$out"/mathjax/jax/output && cp -r "$m"/jax/output/CommonHTML "$out"/mathjax/jax/output/
cp -r "$m"/fonts/HTML-CSS/TeX/woff "$out"/mathjax/fonts/HTML-CSS/TeX/
du -sh "$out"
