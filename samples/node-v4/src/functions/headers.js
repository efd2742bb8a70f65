// headers: reports two request headers as JSON (null when absent) and sets X-Sample.
const { app } = require('@azure/functions');

app.http('headers', {
    methods: ['GET'],
    authLevel: 'anonymous',
    handler: async (request) => {
        const seen = {};
        for (const name of ['x-custom', 'user-agent']) {
            seen[name] = request.headers.get(name);
        }
        return { jsonBody: seen, headers: { 'X-Sample': 'v4' } };
    },
});
