# Chart for bench_heap: time and peak RSS of each allocator relative to
# glibc (1.0 = glibc; lower is better; log scale, since the anchors'
# realloc RSS is 10x). Reads bench/results/heap.dat.
set terminal pngcairo size 1000,520 font "sans,10"
set output "bench/results/heap.png"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set key top left
set grid ytics
set logscale y 2
set yrange [0.125:16]
set ylabel "ratio to glibc, log scale (lower is better)"
set xtics rotate by -25
set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lw 1.5
set title "tarn heap vs glibc, jemalloc, tcmalloc, mimalloc: wall time, then peak RSS"
plot for [c=2:*] "bench/results/heap.dat" using c:xtic(1) title columnheader(c)
