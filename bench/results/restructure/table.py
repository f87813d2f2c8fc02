import json,sys
rows={}
for line in open(sys.argv[1]):
    wl,label,rest=line.split(' ',2)
    rows.setdefault(wl,{})[label]=json.loads(rest[len('RESULT '):])
def keys(d,prefix=''):
    out=set()
    for k,v in d.items():
        out.add(prefix+k)
        if isinstance(v,dict) and k not in ('errors','medians','ratios','host','outcomes'): out|=keys(v,prefix+k+'.')
    return out
def get(d,k):
    for p in k.split('.'):
        if isinstance(d,list): d=d[int(p)]; continue
        if not isinstance(d,dict) or p not in d: return None
        d=d[p]
    return d
figs={'echo':[('msgs_per_s','msgs/s','%.0f'),('p99_us','p99 (µs)','%.0f'),('mismatch','mismatches','%d')],
'echo-k16':[('msgs_per_s','msgs/s','%.0f'),('p99_us','p99 (µs)','%.0f')],
'push':[('push_p50_ms','push p50 (ms)','%.3f'),('push_p99_ms','push p99 (ms)','%.3f'),('complete_pct','every push (%)','%.2f')],
'connections':[('rss_per_conn_bytes','RSS/conn (B)','%.0f'),('fds_per_conn','fds/conn','%.3f'),('connected','connected','%d')],
'fanout':[('last_p50_ms','to last p50 (ms)','%.2f'),('last_p99_ms','to last p99 (ms)','%.2f'),('missing','missing','%d')],
'compare':[('medians.wsmill.msgs_per_s','wsmill msgs/s','%.0f'),('ratios.gorilla.msgs_per_s','gorilla ÷ wsmill msgs/s','%.2f')],
'scale':[('largest_held','largest held','%d'),('steps.-1.pushes_received','pushes received (last step)','%d')],
'soak':[('verdict','verdict','%s'),('good.served','good served','%d'),('good.failed','good failed','%d')],
}
print('| workload | figure | before | after | after ÷ before | same fields |')
print('|---|---|---:|---:|---:|---|')
for wl in ['echo','echo-k16','push','connections','fanout','compare','scale','soak']:
    r=rows.get(wl,{})
    if 'before' not in r or 'after' not in r: continue
    kb,ka=keys(r['before']),keys(r['after'])
    if wl=='compare': kb,ka=set(r['before']),set(r['after'])
    same='yes (%d keys)'%len(kb) if kb==ka else 'no: only before %s, only after %s'%(sorted(kb-ka),sorted(ka-kb))
    for k,lab,f in figs[wl]:
        b,a=get(r['before'],k),get(r['after'],k)
        ratio='%.2f×'%(a/b) if isinstance(a,(int,float)) and isinstance(b,(int,float)) and b else ''
        fb=(f%b) if b is not None else '–'; fa=(f%a) if a is not None else '–'
        print('| %s | %s | %s | %s | %s | %s |'%(wl,lab,fb,fa,ratio,same))
        same=''
