// Signed playback URLs at the edge (njs 0.7.9 or later): the check of
// stb_origin/playback/urlsign.py, so a refused request never reaches the cache
// or the origin.
//
//   /hls/st=exp=<unix seconds>~acl=<asset id>~hmac=<64 hex>/<asset id>/<path>
//
// hmac = HMAC-SHA256(secret, "exp=<unix seconds>~acl=<asset id>") in lower-case
// hex, under any of the comma-separated secrets in $stb_url_signing_secrets
// (the first one signs, the others are still accepted while rotating). No
// secret: signing is off and every request goes on.

var crypto = require('crypto');

var TOKEN = /^\/hls\/st=(exp=(\d{1,12})~acl=([A-Za-z0-9_.-]{1,128}))~hmac=([0-9a-f]{64})\/(.*)$/;

function secrets(r) {
    return r.variables.stb_url_signing_secrets.split(',')
        .map(function (s) { return s.trim(); })
        .filter(function (s) { return s.length > 0; });
}

// Compares every character whatever the first difference, so the time taken
// does not tell how much of a forged hmac was right.
function sameText(a, b) {
    if (a.length !== b.length) {
        return false;
    }
    var diff = 0;
    for (var i = 0; i < a.length; i++) {
        diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
    }
    return diff === 0;
}

// js_set handler: "" when the request may go on, else why not.
function refusal(r) {
    var keys = secrets(r);
    if (keys.length === 0) {
        return '';
    }
    var m = TOKEN.exec(r.uri);  // $uri: decoded and normalised, as the cache key is
    if (m === null) {
        return r.uri.startsWith('/hls/st=') ? 'malformed' : 'unsigned';
    }
    if (Number(m[2]) <= Date.now() / 1000) {
        return 'expired';
    }
    if (!m[5].startsWith(m[3] + '/')) {
        return 'wrong_prefix';
    }
    var matched = false;
    keys.forEach(function (key) {
        var mac = crypto.createHmac('sha256', key).update(m[1]).digest('hex');
        matched = sameText(mac, m[4]) || matched;
    });
    return matched ? '' : 'forged';
}

export default {refusal};
